"""TF Serving's messages and gRPC methods, built from `tf_serving.binpb` in a private pool.

Importing this module imports no TensorFlow: only protobuf's runtime, which turns the
committed descriptor set (see the package docstring) into message classes. The pool
is private, not protobuf's default one, so these classes coexist with TensorFlow's own
`tensor_pb2.TensorProto` & co. in a process that also imports TensorFlow; they are
different classes for the same wire format (serialise with one, parse with the other).

The gRPC client calls `channel.unary_unary(method.path, ...)` with a `Method` below:
the path, the request class and the response class all come from the service
descriptor in the set, so a misspelt method fails at import, not at the first call.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from talkative_common.model_client.protos import DESCRIPTOR_SET, WELL_KNOWN_PREFIX

__all__ = [
    "GET_MODEL_METADATA",
    "GET_MODEL_STATUS",
    "POOL",
    "PREDICT",
    "DataTypes",
    "GetModelMetadataRequest",
    "GetModelMetadataResponse",
    "GetModelStatusRequest",
    "GetModelStatusResponse",
    "Method",
    "ModelSpec",
    "PredictRequest",
    "PredictResponse",
    "SignatureDefMap",
    "TensorProto",
    "TensorShapeProto",
    "message_class",
    "method",
]


def _add_well_known(pool: descriptor_pool.DescriptorPool, name: str, added: set[str]) -> None:
    """Add protobuf's own google/protobuf/<x>.proto (and its imports) to the pool, once."""
    if name in added:
        return
    module = importlib.import_module(
        "google.protobuf." + name.removeprefix(WELL_KNOWN_PREFIX).removesuffix(".proto") + "_pb2"
    )
    for dependency in module.DESCRIPTOR.dependencies:
        _add_well_known(pool, dependency.name, added)
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    added.add(name)


def load_pool(path: Path = DESCRIPTOR_SET) -> descriptor_pool.DescriptorPool:
    """A new pool holding every file of the descriptor set at `path`."""
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    except FileNotFoundError:
        raise RuntimeError(f"{path} is missing: run `make protos` in the dev virtualenv") from None
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    for file in files:  # in dependency order, as the build writes them
        for dependency in file.dependency:
            if dependency.startswith(WELL_KNOWN_PREFIX):
                _add_well_known(pool, dependency, added)
        pool.Add(file)
    return pool


POOL = load_pool()


def message_class(full_name: str) -> type[Message]:
    """The class of a message of the set, e.g. "tensorflow.serving.PredictRequest"."""
    cls: type[Message] = message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))
    return cls


@dataclass(frozen=True)
class Method:
    """One unary gRPC method: its HTTP/2 path and its message classes."""

    path: str  # "/tensorflow.serving.PredictionService/Predict"
    request: type[Message]
    response: type[Message]

    def serialize(self, request: Any) -> bytes:
        data: bytes = request.SerializeToString()
        return data

    def deserialize(self, data: bytes) -> Any:
        return self.response.FromString(data)


def method(service: str, name: str) -> Method:
    """A method of a service of the set: ("tensorflow.serving.PredictionService", "Predict")."""
    descriptor = POOL.FindServiceByName(service).methods_by_name[name]
    return Method(
        path=f"/{service}/{name}",
        request=message_class(descriptor.input_type.full_name),
        response=message_class(descriptor.output_type.full_name),
    )


class DataTypes:
    """tensorflow.DataType (types.proto): enum names <-> numbers, from the set's descriptor."""

    _enum = POOL.FindEnumTypeByName("tensorflow.DataType")

    @classmethod
    def number(cls, name: str) -> int:
        number: int = cls._enum.values_by_name[name].number
        return number

    @classmethod
    def name(cls, number: int) -> str:
        value = cls._enum.values_by_number.get(number)
        return str(value.name) if value is not None else f"DT_UNKNOWN_{number}"


TensorProto = message_class("tensorflow.TensorProto")
TensorShapeProto = message_class("tensorflow.TensorShapeProto")
ModelSpec = message_class("tensorflow.serving.ModelSpec")
SignatureDefMap = message_class("tensorflow.serving.SignatureDefMap")

PREDICT = method("tensorflow.serving.PredictionService", "Predict")
GET_MODEL_METADATA = method("tensorflow.serving.PredictionService", "GetModelMetadata")
GET_MODEL_STATUS = method("tensorflow.serving.ModelService", "GetModelStatus")

PredictRequest, PredictResponse = PREDICT.request, PREDICT.response
GetModelMetadataRequest, GetModelMetadataResponse = (
    GET_MODEL_METADATA.request,
    GET_MODEL_METADATA.response,
)
GetModelStatusRequest, GetModelStatusResponse = GET_MODEL_STATUS.request, GET_MODEL_STATUS.response
