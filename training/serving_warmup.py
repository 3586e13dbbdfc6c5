"""Write TF Serving warm-up requests into a model version: assets.extra/tf_serving_warmup_requests.

TensorFlow Serving replays these PredictionLog records (a TFRecord file) when it
loads a version, before the version takes traffic, so the first users do not pay
for graph initialisation, CUDA kernel loading and memory allocation. With
server-side batching on, each batch size in `allowed_batch_sizes` is a separate
shape, so one request is written per signature and per batch size.

Requests are built from the SavedModel's own signatures (read from
saved_model.pb, no Keras): the contracts of DESIGN.md get realistic inputs
(prompts that run the sampling loop, real JPEG and PNG bytes for the captioner);
any other signature gets small well-typed tensors. By default every record is
replayed through the SavedModel afterwards, because a warm-up request that fails
makes TF Serving refuse to load the whole version.

    python -m training.serving_warmup serving/models/char_lstm_en/1
    python -m training.serving_warmup --repository serving/models   # every version
    python -m training.serving_warmup --check --repository serving/models

`--check` verifies instead what a stock tensorflow_model_server needs: only ops
registered in core TensorFlow (no tensorflow-text, no custom kernels), the batch
dimension first on every signature input, a model card and warm-up requests.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from talkative_common.cli import command_parser

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving reads at most this many warm-up records
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32)  # = allowed_batch_sizes, serving/batching_parameters.txt


def signature_defs(version_dir: Path) -> dict[str, Any]:
    """The serving signatures as TF Serving sees them (from saved_model.pb, no Keras)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    defs = proto.meta_graphs[0].signature_def
    return {name: defs[name] for name in sorted(defs) if not name.startswith("__")}


def _image_bytes(batch: int) -> np.ndarray:
    """Real encoded images, alternating JPEG and PNG and two sizes, as users send them."""
    from PIL import Image

    out = np.empty(batch, dtype=object)
    for i in range(batch):
        width, height = (640, 480) if i % 2 == 0 else (96, 128)
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
        pixels = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG" if i % 2 == 0 else "PNG")
        out[i] = buf.getvalue()
    return out


def _generate_inputs(batch: int, vocab_size: int) -> dict[str, np.ndarray]:
    """`generate` requests that run the whole loop: ragged prompts and every sampling mode."""
    width = 16
    ids = (np.arange(batch * width).reshape(batch, width) % max(vocab_size - 1, 1) + 1).astype(
        np.int32
    )
    lengths = np.array([width - (i % 4) * 3 for i in range(batch)], np.int32)
    ids[np.arange(width)[None, :] >= lengths[:, None]] = 0  # right padding
    return {
        "prompt_ids": ids,
        "prompt_lengths": lengths,
        "max_new_tokens": np.full(batch, 16, np.int32),
        "temperature": np.array([0.8 if i % 2 == 0 else 0.0 for i in range(batch)], np.float32),
        "top_k": np.array([0 if i % 3 == 0 else 40 for i in range(batch)], np.int32),
        "top_p": np.array([1.0 if i % 2 == 0 else 0.9 for i in range(batch)], np.float32),
        "seed": np.arange(batch, dtype=np.int64),
    }


def _generic(tensor: Any, batch: int) -> np.ndarray:
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(tensor.dtype)
    dims = [d.size for d in tensor.tensor_shape.dim]
    shape = [batch] + [d if d > 0 else 1 for d in dims[1:]]
    if dtype == tf.string:
        out = np.empty(shape, dtype=object)
        out[...] = b"warmup"
        return out
    return np.ones(shape, dtype=dtype.as_numpy_dtype)


def build_inputs(sdef: Any, batch: int, card: dict[str, Any]) -> dict[str, np.ndarray]:
    names = set(sdef.inputs)
    if {"prompt_ids", "prompt_lengths", "max_new_tokens", "seed"} <= names:
        vocab = int(card.get("tokenizer", {}).get("size", 32))
        generated = _generate_inputs(batch, vocab)
        return {
            k: generated[k] if k in generated else _generic(sdef.inputs[k], batch) for k in names
        }
    return {
        k: _image_bytes(batch) if "image" in k else _generic(sdef.inputs[k], batch) for k in names
    }


def build_requests(
    version_dir: Path, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES
) -> list[Any]:
    """PredictionLog records for every signature and batch size.

    Signatures that alias one function (serving_default and generate) are both warmed:
    TF Serving builds a separate executor for each feed/fetch set on its first call.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    card_path = version_dir / "assets.extra" / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    name = str(card.get("name", version_dir.parent.name))
    logs = []
    for signature, sdef in signature_defs(version_dir).items():
        for batch in batch_sizes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
            )
            for key, value in build_inputs(sdef, batch, card).items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    if len(logs) > MAX_RECORDS:
        raise ValueError(f"{len(logs)} warm-up records; TF Serving reads at most {MAX_RECORDS}")
    return logs


def read_requests(path: Path) -> list[Any]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw)
        logs.append(log)
    return logs


def replay(version_dir: Path, logs: Iterable[Any], progress: Any = None) -> int:
    """Run every record through the SavedModel as TF Serving would; raise on the first failure."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    count = 0
    for log in logs:
        request = log.predict_log.request
        fn = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        batch = next(iter(inputs.values())).shape[0]
        outputs = fn(**inputs)
        for key, value in outputs.items():
            if value.shape.rank and value.shape[0] != batch:
                raise ValueError(
                    f"{version_dir}: output {key!r} has {value.shape[0]} rows "
                    f"for a batch of {batch}"
                )
        count += 1
        if progress is not None:
            progress.update(1)
    return count


def write_warmup(
    version_dir: Path,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    *,
    verify: bool = True,
    force: bool = False,
) -> Path:
    import tensorflow as tf
    from tqdm import tqdm

    version_dir = Path(version_dir)
    if not (version_dir / "saved_model.pb").exists():
        raise FileNotFoundError(f"{version_dir} holds no saved_model.pb")
    target = version_dir / "assets.extra" / WARMUP_FILE
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists (use --force to rewrite it)")
    logs = build_requests(version_dir, batch_sizes)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tf.io.TFRecordWriter(str(partial)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    if verify:
        with tqdm(total=len(logs), desc=f"replay {version_dir}", unit="req") as bar:
            replay(version_dir, read_requests(partial), bar)
    partial.replace(target)  # a half-written or failing file never takes the real name
    return target


def graph_ops(version_dir: Path) -> set[str]:
    """Every op type in the graph and its function library, calls to library functions aside."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    functions: set[str] = set()
    for meta in proto.meta_graphs:
        library = meta.graph_def.library
        functions |= {f.signature.name for f in library.function}
        ops |= {n.op for n in meta.graph_def.node}
        for function in library.function:
            ops |= {n.op for n in function.node_def}
    return ops - functions


def check_version(version_dir: Path, *, warmup: bool = True) -> list[str]:
    """What would stop a stock TF Serving from loading and batching this version (empty: fine)."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    problems = []
    custom = sorted(
        op
        for op in graph_ops(version_dir)
        if op_def_registry.get(op) is None or not hasattr(tf.raw_ops, op)
    )
    if custom:
        problems.append(f"ops outside core TensorFlow: {custom}")
    defs = signature_defs(version_dir)
    if not defs:
        problems.append("no serving signature")
    for name, sdef in defs.items():
        for key, tensor in sdef.inputs.items():
            dims = [d.size for d in tensor.tensor_shape.dim]
            if tensor.tensor_shape.unknown_rank or not dims:
                problems.append(f"{name}: input {key!r} has no batch dimension (rank 0 or unknown)")
            elif dims[0] != -1:
                problems.append(f"{name}: input {key!r} has a fixed first dimension {dims[0]}")
    if not (version_dir / "assets.extra" / "model_card.json").exists():
        problems.append("no assets.extra/model_card.json")
    if warmup and not (version_dir / "assets.extra" / WARMUP_FILE).exists():
        problems.append(f"no assets.extra/{WARMUP_FILE}")
    return problems


def version_dirs(repository: Path) -> list[Path]:
    return sorted(
        p.parent for p in Path(repository).glob("*/*/saved_model.pb") if p.parent.name.isdigit()
    )


def main(argv: list[str] | None = None) -> int:
    """Write assets.extra/tf_serving_warmup_requests (TFRecord of PredictionLog) into TF Serving
    model versions, one request per signature and batch size, then replay them through the
    SavedModel to prove TF Serving will load the version."""
    parser = command_parser(main)
    parser.add_argument(
        "versions",
        nargs="*",
        type=Path,
        help="model version directories, e.g. serving/models/char_lstm_en/1",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        help="do every version under this model repository (e.g. serving/models) that lacks "
        "warm-up requests (all of them with --force)",
    )
    parser.add_argument(
        "--batch-sizes",
        default=",".join(map(str, DEFAULT_BATCH_SIZES)),
        help="comma-separated batch sizes to warm; match allowed_batch_sizes in "
        "serving/batching_parameters.txt (default: %(default)s)",
    )
    parser.add_argument(
        "--force", action="store_true", help="rewrite warm-up files that already exist"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; check that each version loads in a stock TF Serving (core ops "
        "only, batch dimension first, model card and warm-up requests present); exit 1 if not",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip replaying the records through the SavedModel (faster, but a bad record "
        "would only show when TF Serving refuses to load the version)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.batch_sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--batch-sizes takes integers, e.g. 1,2,4,8")
    if not sizes or sizes[0] < 1:
        parser.error("--batch-sizes takes positive integers")
    targets = list(args.versions)
    if args.check:
        targets += version_dirs(args.repository) if args.repository else []
        if not targets:
            parser.error("name model version directories or --repository")
        failed = 0
        for version_dir in targets:
            problems = check_version(version_dir)
            failed += bool(problems)
            print(f"{version_dir}: " + ("; ".join(problems) if problems else "fits TF Serving"))
        return 1 if failed else 0
    if args.repository:
        found = version_dirs(args.repository)
        targets += [
            v for v in found if args.force or not (v / "assets.extra" / WARMUP_FILE).exists()
        ]
    if not targets:
        if args.repository:
            print(f"every version under {args.repository} has its warm-up requests")
            return 0
        parser.error("name model version directories or --repository")
    for version_dir in targets:
        try:
            path = write_warmup(version_dir, sizes, verify=not args.no_verify, force=args.force)
        except (FileNotFoundError, FileExistsError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
