"""TF Serving config messages that the tensorflow-serving-api wheel does not ship.

`BatchingParameters` (--batching_parameters_file) and `MonitoringConfig` /
`PrometheusConfig` (--monitoring_config_file) are built at import time from a
FileDescriptorProto written out below, in a private descriptor pool, under TF Serving's
own package name, so text files written for `tensorflow_model_server` parse the same here.
`parse_text` / `ConfigError` are the text-format reader for every config file of the server.
"""

from __future__ import annotations

import re
from typing import TypeVar

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from google.protobuf.message import Message

__all__ = [
    "BatchingParameters",
    "ConfigError",
    "MonitoringConfig",
    "PrometheusConfig",
    "parse_text",
]

_PACKAGE = "tensorflow.serving"

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL = _F.LABEL_OPTIONAL
_REPEATED = _F.LABEL_REPEATED

# (name, number, label, type, type_name) per field. Transcribed from
#   tensorflow_serving/servables/tensorflow/session_bundle_config.proto: BatchingParameters
#   tensorflow_serving/config/monitoring_config.proto: PrometheusConfig, MonitoringConfig
# (tensorflow/serving at commit 9d981c5, see docs/model-server.md).
# Field numbers matter only for the binary form; names and types decide text parsing.
_FieldSpec = tuple[str, int, int, int, str]
_MESSAGES: dict[str, list[_FieldSpec]] = {
    "BatchingParameters": [
        ("max_batch_size", 1, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("num_batch_threads", 4, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 5, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, _REPEATED, _F.TYPE_INT64, ""),
        ("pad_variable_length_inputs", 7, _OPTIONAL, _F.TYPE_BOOL, ""),
        (
            "enable_large_batch_splitting",
            8,
            _OPTIONAL,
            _F.TYPE_MESSAGE,
            ".google.protobuf.BoolValue",
        ),
        ("max_execution_batch_size", 9, _OPTIONAL, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    ],
    "PrometheusConfig": [
        ("enable", 1, _OPTIONAL, _F.TYPE_BOOL, ""),
        ("path", 2, _OPTIONAL, _F.TYPE_STRING, ""),
    ],
    "MonitoringConfig": [
        (
            "prometheus_config",
            1,
            _OPTIONAL,
            _F.TYPE_MESSAGE,
            ".tensorflow.serving.PrometheusConfig",
        ),
    ],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        # A name of our own: the two upstream files hold more messages than these.
        name="model_server/tensorflow_serving_configs.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name],
    )
    for message_name, fields in _MESSAGES.items():
        message = fdp.message_type.add(name=message_name)
        for name, number, label, type_, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=type_)
            if type_name:
                field.type_name = type_name
    return fdp


def _build_pool() -> descriptor_pool.DescriptorPool:
    # A private pool: a later tensorflow-serving-api that ships these messages in the
    # default pool cannot clash with ours.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(_file_descriptor())
    return pool


_POOL = _build_pool()


def _message_class(name: str) -> type[Message]:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


BatchingParameters: type[Message] = _message_class("BatchingParameters")
PrometheusConfig: type[Message] = _message_class("PrometheusConfig")
MonitoringConfig: type[Message] = _message_class("MonitoringConfig")


class ConfigError(ValueError):
    """A config file that cannot be used: where (when known) and why."""

    def __init__(
        self, reason: str, *, source: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.reason, self.source, self.line, self.column = reason, source, line, column
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {reason}")


M = TypeVar("M", bound=Message)

# text_format.ParseError's str() starts with "line:column : "; the location goes in our own prefix.
_LOCATION_PREFIX = re.compile(r"^\d+(?::\d+)? : ")


def parse_text(message_class: type[M], text: str, source: str) -> M:
    """Parse `text` (protobuf text format) into a new `message_class`, as ParseProtoTextFile does.

    Raises ConfigError naming `source` (a path, or a description such as "--flag") and
    the 1-based line and column of the problem.
    """
    message = message_class()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        reason = _LOCATION_PREFIX.sub("", str(e), count=1)
        raise ConfigError(reason, source=source, line=e.GetLine(), column=e.GetColumn()) from e
    return message
