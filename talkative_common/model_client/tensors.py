"""numpy arrays <-> TF Serving's wire forms: TensorProto (gRPC) and columnar JSON (REST).

Written by hand rather than with tf.make_tensor_proto / tf.make_ndarray, and on the
TensorProto class of `talkative_common.model_client.protos.tf_serving` rather than TensorFlow's
generated `tensor_pb2`: importing anything under `tensorflow.` (even one `_pb2` module)
imports the `tensorflow` package and loads its whole runtime (seconds of start-up,
hundreds of MB of RSS), which a service calling a remote model has no use for. Nothing
here imports TensorFlow; the model server (model-server/model_server/wire.py) shares
VALUE_FIELD with it.

Requests carry numeric tensors as little-endian `tensor_content` (compact, one copy).
Answers are read in either form: TF Serving writes its outputs in the typed value
fields (`float_val`, `int_val`...) by default, and as `tensor_content` with
--enable_serialization_as_tensor_content. REST strings use TF Serving's base64 form.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

from talkative_common.model_client.protos.tf_serving import DataTypes, TensorProto, TensorShapeProto
from talkative_common.model_client.types import SignatureInfo, TensorInfo

# TensorFlow DataType enum name -> numpy dtype (the types a contract can use).
DT_TO_NUMPY: dict[str, str] = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_HALF": "float16",
    "DT_INT8": "int8",
    "DT_INT16": "int16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_UINT8": "uint8",
    "DT_UINT16": "uint16",
    "DT_UINT32": "uint32",
    "DT_UINT64": "uint64",
    "DT_BOOL": "bool",
    "DT_STRING": "string",
}
NUMPY_TO_DT = {v: k for k, v in DT_TO_NUMPY.items()}

# TensorProto's typed value field for each dtype, when tensor_content is empty.
VALUE_FIELD = {
    "float32": "float_val",
    "float64": "double_val",
    "float16": "half_val",
    "int8": "int_val",
    "int16": "int_val",
    "int32": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
}


def dtype_name(array: np.ndarray) -> str:
    """The contract's name for an array's dtype ("string" for bytes/str object arrays)."""
    if array.dtype.kind in "OSU":
        return "string"
    return array.dtype.name


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"a string tensor holds {type(value).__name__}, expected bytes or str")


def to_tensor_proto(array: np.ndarray) -> Any:
    """A tensorflow.TensorProto (this package's class, see talkative_common.model_client.protos)."""
    array = np.asarray(array)
    name = dtype_name(array)
    if name not in NUMPY_TO_DT:
        raise TypeError(f"dtype {array.dtype} cannot be sent to a model")
    proto = TensorProto(dtype=DataTypes.number(NUMPY_TO_DT[name]), tensor_shape=TensorShapeProto())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    if name == "string":
        proto.string_val.extend(_as_bytes(v) for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def from_tensor_proto(proto: Any) -> np.ndarray:
    """A TensorProto's array; any class with its fields will do (ours, TensorFlow's)."""
    dt = DataTypes.name(proto.dtype)
    if dt not in DT_TO_NUMPY:
        raise TypeError(f"the model answered a {dt} tensor, which no contract uses")
    name = DT_TO_NUMPY[dt]
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = int(np.prod(shape)) if shape else 1
    if name == "string":
        values: Any = list(proto.string_val)
        out = np.empty(len(values), dtype=object)
        out[:] = values
    elif proto.tensor_content:
        out = np.frombuffer(proto.tensor_content, dtype=np.dtype(name).newbyteorder("<"))
        out = out.astype(name)
    else:
        raw = getattr(proto, VALUE_FIELD[name])
        if name == "float16":  # half_val holds the float16 bit patterns as ints
            out = np.asarray(raw, np.uint16).view(np.float16)
        else:
            out = np.asarray(raw, dtype=name)
    if out.size == 1 and count > 1:  # a single value stands for a constant tensor
        out = np.full(count, out[0], dtype=out.dtype)
    if out.size != count:
        raise ValueError(f"tensor of shape {shape} carries {out.size} values")
    return out.reshape(shape)


def signature_from_proto(signature_def: Any) -> SignatureInfo:
    """A SignatureDef protobuf (GetModelMetadata over gRPC) as a SignatureInfo."""

    def info(t: Any) -> TensorInfo:
        dt = DataTypes.name(t.dtype)
        dtype = DT_TO_NUMPY.get(dt, dt)
        if t.tensor_shape.unknown_rank:
            return TensorInfo(dtype, None)
        dims = tuple(None if d.size < 0 else int(d.size) for d in t.tensor_shape.dim)
        return TensorInfo(dtype, dims)

    return SignatureInfo(
        inputs={k: info(v) for k, v in signature_def.inputs.items()},
        outputs={k: info(v) for k, v in signature_def.outputs.items()},
    )


def signature_from_json(signature_def: Mapping[str, Any]) -> SignatureInfo:
    """A SignatureDef in TF Serving's REST metadata JSON (proto field names) as a SignatureInfo."""

    def info(t: Mapping[str, Any]) -> TensorInfo:
        dt = str(t.get("dtype", "DT_INVALID"))
        shape = t.get("tensor_shape", {})
        if shape.get("unknown_rank", False):
            return TensorInfo(DT_TO_NUMPY.get(dt, dt), None)
        dims = tuple(int(d.get("size", 0)) for d in shape.get("dim", []))
        return TensorInfo(DT_TO_NUMPY.get(dt, dt), tuple(None if d < 0 else d for d in dims))

    return SignatureInfo(
        inputs={k: info(v) for k, v in signature_def.get("inputs", {}).items()},
        outputs={k: info(v) for k, v in signature_def.get("outputs", {}).items()},
    )


def to_json(array: np.ndarray) -> Any:
    """One input tensor in REST columnar form; strings as {"b64": ...} (standard base64)."""
    array = np.asarray(array)
    if dtype_name(array) != "string":
        return array.tolist()
    encoded = np.empty(array.shape, dtype=object)
    for index, value in np.ndenumerate(array):
        encoded[index] = {"b64": base64.b64encode(_as_bytes(value)).decode("ascii")}
    return encoded.tolist()


def from_json(value: Any, info: TensorInfo) -> np.ndarray:
    """One output tensor of a REST answer, typed by the signature's metadata."""
    if info.dtype != "string":
        return np.asarray(value, dtype=info.dtype)

    def decode(v: Any) -> Any:
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict):
            return base64.b64decode(v["b64"])
        return _as_bytes(v)

    # bytes are not sequences to numpy, so nesting alone gives the shape
    return np.array(decode(value), dtype=object)
