"""Small real SavedModels whose outputs show what the model server did with a request.

`probe` has four signatures (every input batch-first, as DESIGN.md asks):
- serving_default: x float32[B, N] -> y = x (NaN and Infinity go through untouched);
- strings: s string[B] -> text, raw_bytes (REST answers *_bytes outputs in base64);
- batch: ids int32[B, T] -> batch (rows the graph ran with), width (T after padding),
  total (sum over the whole batch, padding rows included), sums (per row);
- wait: path string[B] -> polls: writes path[0] + ".started", then loops until a file
  named path[0] exists. A test holds a batch thread or a warm-up record for as long as
  it likes, sees when the graph has started, and releases it by creating the file: no
  timing guesses. (The loop spins one core while it waits; tests release it promptly.)
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.model_server import wait_until


def build_probe(version_dir: Path) -> Path:
    import tensorflow as tf

    class Probe(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def serving_default(self, x: Any) -> dict[str, Any]:
            return {"y": tf.identity(x)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def strings(self, s: Any) -> dict[str, Any]:
            return {"text": tf.identity(s), "raw_bytes": tf.identity(s)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")])
        def batch(self, ids: Any) -> dict[str, Any]:
            rows, width = tf.shape(ids)[0], tf.shape(ids)[1]
            return {
                "batch": tf.fill([rows], rows),
                "width": tf.fill([rows], width),
                "total": tf.fill([rows], tf.reduce_sum(ids)),
                "sums": tf.reduce_sum(ids, axis=1),
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="path")])
        def wait(self, path: Any) -> dict[str, Any]:
            started = tf.io.write_file(path[0] + ".started", "started")
            with tf.control_dependencies([started]):
                polls = tf.while_loop(
                    lambda n: tf.equal(tf.size(tf.io.matching_files(path[0])), 0),
                    lambda n: [n + 1],
                    [tf.constant(0)],
                )[0]
            return {"polls": tf.fill([tf.shape(path)[0]], polls)}

    module = Probe()
    tf.saved_model.save(
        module,
        str(version_dir),
        signatures={
            "serving_default": module.serving_default,
            "strings": module.strings,
            "batch": module.batch,
            "wait": module.wait,
        },
    )
    return version_dir


def write_warmup(
    version_dir: Path, records: Sequence[tuple[str, Mapping[str, np.ndarray]]]
) -> None:
    """assets.extra/tf_serving_warmup_requests: PredictionLog records, as TF Serving reads them."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    target = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for signature, inputs in records:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name="probe", signature_name=signature)
            )
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


WARMUP = [("batch", {"ids": np.ones((b, 3), np.int32)}) for b in (1, 2, 4)]


@pytest.fixture(scope="session")
def probe_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built probe version (with three warm-up records) that tests copy as they need."""
    path = build_probe(tmp_path_factory.mktemp("probe_build") / "1")
    write_warmup(path, WARMUP)
    return path


@pytest.fixture
def repository(tmp_path: Path, probe_version: Path) -> Path:
    """A fresh repository holding probe version 1 only."""
    root = tmp_path / "models"
    shutil.copytree(probe_version, root / "probe" / "1")
    return root


def add_version(
    repository: Path,
    probe_version: Path,
    version: int,
    warmup: Sequence[tuple[str, Mapping[str, np.ndarray]]] | None = None,
    name: str = "probe",
) -> Path:
    """Copy the probe in as another version, optionally with other warm-up records."""
    target = repository / name / str(version)
    shutil.copytree(probe_version, target)
    if warmup is not None:
        write_warmup(target, warmup)
    return target


class Gate:
    """Holds the `wait` signature: it runs until release() creates the file it polls for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = Path(str(path) + ".started")

    @property
    def input(self) -> np.ndarray:
        return np.array([str(self.path).encode()], dtype=object)

    def wait_started(self, seen: Any = None) -> None:
        wait_until(self.started.exists, f"the graph to reach {self.path}", seen=seen)

    def release(self) -> None:
        self.path.write_text("go", encoding="utf-8")
