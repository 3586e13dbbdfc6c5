"""One loaded model version: its SavedModel, its signatures, a checked run and the warm-up replay.

Signatures are read from saved_model.pb itself and served whole, `__saved_model_init_op`
included, as TF Serving's GetModelMetadata does (it copies every entry of the meta
graph's signature_def map: tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc).
Inputs are checked against the signature before anything runs, so a bad request is
refused with INVALID_ARGUMENT instead of reaching (and, with batching, poisoning) a batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_server.errors import failed_precondition, internal, invalid_argument, not_found

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("model_server.servable")

DEFAULT_SIGNATURE = "serving_default"  # kDefaultServingSignatureDefKey
INIT_OP_SIGNATURE = "__saved_model_init_op"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # servables/tensorflow/saved_model_warmup_util.cc kMaxNumRecords


def _tf() -> Any:
    import tensorflow as tf

    return tf


def numpy_dtype_name(dtype_enum: int) -> str:
    """The numpy name of a TensorFlow DataType enum ("string" for DT_STRING)."""
    tf = _tf()
    dtype = tf.dtypes.as_dtype(dtype_enum)
    return "string" if dtype == tf.string else str(dtype.as_numpy_dtype().dtype.name)


def array_dtype_name(array: np.ndarray) -> str:
    return "string" if array.dtype.kind in "OSU" else array.dtype.name


@dataclass
class Servable:
    name: str
    version: int
    path: Path
    loaded: Any
    signature_defs: dict[str, Any]  # every SignatureDef of the meta graph, init op included
    _functions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, version: int, path: Path) -> Servable:
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel()
        try:
            proto.ParseFromString((path / "saved_model.pb").read_bytes())
        except OSError as exc:
            raise not_found(f"Could not find SavedModel .pb at {path}: {exc}") from exc
        defs = dict(proto.meta_graphs[0].signature_def.items())
        loaded = _tf().saved_model.load(str(path))
        return cls(name, version, path, loaded, defs)

    def signature(self, name: str) -> Any:
        """The SignatureDef a Predict names (empty = serving_default); predict_util.cc."""
        name = name or DEFAULT_SIGNATURE
        sdef = self.signature_defs.get(name)
        if sdef is None or name == INIT_OP_SIGNATURE:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        return sdef

    def check_inputs(self, signature: str, inputs: Mapping[str, np.ndarray]) -> None:
        """Keys, dtypes and ranks against the signature (predict_util.cc, then the graph's own
        argument checks), with TF Serving's wording where it has one."""
        sdef = self.signature(signature)
        wanted, sent = set(sdef.inputs), set(inputs)
        if sent != wanted:
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        for index, key in enumerate(sorted(inputs)):
            info, value = sdef.inputs[key], inputs[key]
            expected, got = numpy_dtype_name(info.dtype), array_dtype_name(value)
            if expected != got:
                raise invalid_argument(
                    f"Expects arg[{index}] ({key}) to be {expected} but {got} is provided"
                )
            if info.tensor_shape.unknown_rank:
                continue
            dims = [d.size for d in info.tensor_shape.dim]
            if value.ndim != len(dims):
                raise invalid_argument(
                    f"input {key!r} must have rank {len(dims)} (shape "
                    f"{[None if d < 0 else d for d in dims]}), got shape {list(value.shape)}"
                )
            for axis, (want, have) in enumerate(zip(dims, value.shape, strict=True)):
                if want >= 0 and want != have:
                    raise invalid_argument(
                        f"input {key!r} dimension {axis} must be {want}, got {have}"
                    )

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature's function on already-checked inputs."""
        tf = _tf()
        name = signature or DEFAULT_SIGNATURE
        fn = self._functions.get(name)
        if fn is None:
            try:
                fn = self._functions[name] = self.loaded.signatures[name]
            except KeyError:
                raise failed_precondition(f'Serving signature key "{name}" not found.') from None
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as exc:
            raise invalid_argument(exc.message) from exc
        except tf.errors.OpError as exc:
            raise internal(exc.message) from exc
        except (ValueError, TypeError) as exc:  # the function refused the arguments' shapes
            raise invalid_argument(str(exc)) from exc
        return {k: v.numpy() for k, v in outputs.items()}

    def warmup_records(self) -> list[Any]:
        """The PredictionLog records of assets.extra/tf_serving_warmup_requests (none if absent)."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / "assets.extra" / WARMUP_FILE
        if not path.exists():
            return []
        records: list[Any] = []
        for raw in _tf().data.TFRecordDataset(str(path)):
            if len(records) >= MAX_WARMUP_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
                )
            entry = prediction_log_pb2.PredictionLog()
            entry.ParseFromString(raw.numpy())
            records.append(entry)
        return records
