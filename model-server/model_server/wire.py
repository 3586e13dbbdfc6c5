"""Tensors on the wire, as TF Serving writes and reads them.

gRPC: inputs are read with tf.make_ndarray (tensor_content or the typed value fields).
Outputs are written in the typed value fields (float_val, int_val, string_val...), the
default of model_servers/server.cc (Tensor::AsProtoField), or as little-endian
tensor_content with --enable_serialization_as_tensor_content.

REST (util/json_tensor.cc): the columnar ("inputs"/"outputs") and row ("instances"/
"predictions") forms; strings as {"b64": ...} in requests, and in answers for outputs
whose name ends in "_bytes"; floats written with six significant digits and ".0" on
whole numbers, NaN and Infinity written bare (rapidjson's kWriteNanAndInfFlag), and
read the same way (kParseNanAndInfFlag).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from model_server.errors import invalid_argument
from model_server.servable import numpy_dtype_name
from talkative_common.model_client.tensors import VALUE_FIELD  # the TensorProto field of each dtype


def from_tensor_proto(name: str, proto: Any) -> np.ndarray:
    import tensorflow as tf

    try:
        array = tf.make_ndarray(proto)
    except Exception as exc:  # a TensorProto whose values do not fit its shape or dtype
        raise invalid_argument(f"input {name!r} is not a valid tensor: {exc}") from exc
    return np.asarray(array)


def to_tensor_proto(array: np.ndarray, *, as_content: bool = False) -> Any:
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    array = np.asarray(array)
    name = array.dtype.name
    # half_val holds float16 bit patterns: leave those to make_tensor_proto as well.
    if as_content or array.dtype.kind in "OSU" or name not in VALUE_FIELD or name == "float16":
        proto: Any = tf.make_tensor_proto(array)
        return proto
    proto = tensor_pb2.TensorProto(
        dtype=tf.dtypes.as_dtype(array.dtype).as_datatype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(s)) for s in array.shape]
        ),
    )
    getattr(proto, VALUE_FIELD[array.dtype.name]).extend(array.reshape(-1).tolist())
    return proto


# ---- REST -------------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)  # NaN, Infinity and -Infinity are read, as rapidjson is told to
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_argument(f"JSON Parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def _debug(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _type_error(value: Any, dtype: str) -> Exception:
    kind = {bool: "BOOL", int: "NUMBER", float: "NUMBER", str: "STRING", list: "ARRAY"}.get(
        type(value), "OBJECT" if isinstance(value, dict) else "NULL"
    )
    return invalid_argument(
        f"JSON Value: {_debug(value)} Type: {kind} is not of expected type: {dtype}"
    )


def _scalar(value: Any, dtype: str) -> Any:
    if dtype == "string":
        if isinstance(value, dict):
            if set(value) != {"b64"} or not isinstance(value["b64"], str):
                raise invalid_argument(
                    f"JSON Value: {_debug(value)} not formatted correctly for base64 data"
                )
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
        if isinstance(value, str):
            return value.encode("utf-8")
        raise _type_error(value, dtype)
    if dtype == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(value, dtype)
    info = np.iinfo(np.dtype(dtype))
    if not info.min <= value <= info.max:
        raise _type_error(value, dtype)
    return value


def _nested(value: Any, dtype: str) -> Any:
    if isinstance(value, list):
        return [_nested(v, dtype) for v in value]
    return _scalar(value, dtype)


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = {_shape(v) for v in value}
    if len(inner) != 1:
        raise invalid_argument("Expecting tensor of uniform shape: nested lists differ in length")
    return (len(value), *inner.pop())


def json_to_array(value: Any, tensor_info: Any) -> np.ndarray:
    """One input tensor from JSON, typed by the signature (JSON numbers carry no dtype)."""
    dtype = numpy_dtype_name(tensor_info.dtype)
    shape = _shape(value)
    values = _nested(value, dtype)
    if dtype == "string":
        out = np.empty(shape, dtype=object)
        if shape:
            flat: list[Any] = list(np.array(values, dtype=object).reshape(-1)) if values else []
            out.reshape(-1)[:] = flat
        else:
            out[()] = values
        return out
    return np.asarray(values, dtype=dtype).reshape(shape)


def request_inputs(doc: Mapping[str, Any], signature_def: Any) -> tuple[dict[str, np.ndarray], str]:
    """The named inputs of a :predict body, and its format ("row" or "columnar")."""
    infos = signature_def.inputs
    has_rows, has_columns = "instances" in doc, "inputs" in doc
    if has_rows and has_columns:
        raise invalid_argument(
            f"JSON Value: {_debug(dict(doc))} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_rows:
        rows = doc["instances"]
        if not isinstance(rows, list):
            raise invalid_argument(
                f"JSON Value: {_debug(dict(doc))} Expecting 'instances' to be an list/array"
            )
        if not rows:
            raise invalid_argument(
                f"JSON Value: {_debug(dict(doc))} No values in 'instances' array"
            )
        if not isinstance(rows[0], dict):
            if len(infos) > 1:
                raise invalid_argument(
                    "instances is a plain list, but expecting list of objects as multiple "
                    "input tensors required as per tensorinfo_map"
                )
            name = next(iter(infos))
            return {name: json_to_array(rows, infos[name])}, "row"
        columns: dict[str, list[Any]] = {name: [] for name in infos}
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            if set(row) != set(infos):
                missing = sorted(set(infos) - set(row))
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug(row)} keys {sorted(row)} do not match the named inputs "
                    f"{sorted(infos)} (missing {missing})"
                )
            for name in infos:
                columns[name].append(row[name])
        return {name: json_to_array(columns[name], infos[name]) for name in infos}, "row"
    if has_columns:
        given = doc["inputs"]
        if not isinstance(given, dict) or (len(infos) == 1 and next(iter(infos)) not in given):
            if len(infos) != 1:
                raise invalid_argument(
                    "inputs is a plain value, but expecting an object as multiple input tensors "
                    "are required as per tensorinfo_map"
                )
            given = {next(iter(infos)): given}
        for name in infos:
            if name not in given:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        extra = sorted(set(given) - set(infos))
        if extra:
            raise invalid_argument(f"JSON object: does not have named input: {extra[0]}")
        return {name: json_to_array(given[name], infos[name]) for name in infos}, "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _decimal(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"  # absl::StrCat of a float or a double: six significant digits
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _write(value: Any, dtype: str, binary: bool) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_write(v, dtype, binary) for v in value) + "]"
    if dtype == "string":
        if binary:
            return '{"b64":"' + base64.b64encode(value).decode("ascii") + '"}'
        return json.dumps(value.decode("utf-8", errors="replace"), ensure_ascii=False)
    if dtype == "bool":
        return "true" if value else "false"
    if dtype.startswith("float"):
        return _decimal(float(value))
    return str(int(value))


def _tensor_json(name: str, array: np.ndarray, row: bool) -> list[str] | str:
    dtype = "string" if array.dtype.kind in "OSU" else array.dtype.name
    binary = name.endswith("_bytes")  # util/json_tensor.cc IsNamedTensorBytes
    nested = array.tolist()
    if row:
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        return [_write(item, dtype, binary) for item in nested]
    return _write(nested, dtype, binary)


def response_json(outputs: Mapping[str, np.ndarray], form: str) -> str:
    """MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)  # a protobuf map is written in key order
    objects = len(names) > 1
    if form == "columnar":
        parts = {n: _tensor_json(n, outputs[n], False) for n in names}
        if objects:
            body = "{" + ",".join(f"{json.dumps(n)}:{parts[n]}" for n in names) + "}"
        else:
            body = str(parts[names[0]])
        return '{"outputs":' + body + "}"
    rows = {n: _tensor_json(n, outputs[n], True) for n in names}
    sizes = {n: len(r) for n, r in rows.items()}
    if len(set(sizes.values())) != 1:
        first = names[0]
        for n in names[1:]:
            if sizes[n] != sizes[first]:
                raise invalid_argument(
                    f"Tensor name: {n} has inconsistent batch size: {sizes[n]} "
                    f"expecting: {sizes[first]}"
                )
    items = []
    for i in range(sizes[names[0]]):
        if objects:
            items.append("{" + ",".join(f"{json.dumps(n)}:{rows[n][i]}" for n in names) + "}")
        else:
            items.append(rows[names[0]][i])
    return '{"predictions":[' + ",".join(items) + "]}"
