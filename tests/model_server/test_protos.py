"""model_server.protos: TF Serving's config messages, built without their generated modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_server.protos import (
    BatchingParameters,
    ConfigError,
    MonitoringConfig,
    PrometheusConfig,
    parse_text,
)

ROOT = Path(__file__).resolve().parents[2]


def test_messages_use_tf_serving_package_names() -> None:
    """Same full names as upstream, so text files (and Any type URLs) match TF Serving's."""
    assert BatchingParameters.DESCRIPTOR.full_name == "tensorflow.serving.BatchingParameters"
    assert MonitoringConfig.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"
    assert PrometheusConfig.DESCRIPTOR.full_name == "tensorflow.serving.PrometheusConfig"


def test_project_monitoring_config() -> None:
    """serving/monitoring.config, as --monitoring_config_file reads it (server.cc)."""
    path = ROOT / "serving" / "monitoring.config"
    config = parse_text(MonitoringConfig, path.read_text(), str(path))
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_batching_parameters_wrappers_track_presence() -> None:
    """session_bundle_config.proto: wrapper fields, so unset differs from zero."""
    params = parse_text(
        BatchingParameters,
        "batch_timeout_micros { value: 0 }\nallowed_batch_sizes: [2, 4]\n",
        "b",
    )
    assert params.HasField("batch_timeout_micros")
    assert params.batch_timeout_micros.value == 0
    assert not params.HasField("max_batch_size")
    assert list(params.allowed_batch_sizes) == [2, 4]
    assert BatchingParameters.FromString(params.SerializeToString()) == params


def test_parse_error_carries_source_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text(MonitoringConfig, "prometheus_config {\n  enable: maybe\n}\n", "mon.config")
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.source, error.line, error.column) == ("mon.config", 2, 11)
    assert str(error) == f"mon.config:2:11: {error.reason}"
    assert "maybe" in error.reason


def test_config_error_without_location() -> None:
    assert str(ConfigError("bad", source="x.txt")) == "x.txt: bad"
    assert str(ConfigError("bad", source="x.txt", line=3)) == "x.txt:3: bad"


# Field name -> (number, repeated), read off tensorflow_serving/servables/tensorflow/
# session_bundle_config.proto and tensorflow_serving/config/monitoring_config.proto: a
# text file written for TF Serving must parse the same here, and a binary one too.
UPSTREAM = {
    "BatchingParameters": {
        "max_batch_size": (1, False),
        "batch_timeout_micros": (2, False),
        "max_enqueued_batches": (3, False),
        "num_batch_threads": (4, False),
        "thread_pool_name": (5, False),
        "allowed_batch_sizes": (6, True),
        "pad_variable_length_inputs": (7, False),
        "enable_large_batch_splitting": (8, False),
        "max_execution_batch_size": (9, False),
    },
    "MonitoringConfig": {"prometheus_config": (1, False)},
    "PrometheusConfig": {"enable": (1, False), "path": (2, False)},
}


@pytest.mark.parametrize("message_class", [BatchingParameters, MonitoringConfig, PrometheusConfig])
def test_field_numbers_match_upstream(message_class: type) -> None:
    desc = message_class.DESCRIPTOR  # type: ignore[attr-defined]
    ours = {f.name: (f.number, f.is_repeated) for f in desc.fields}
    assert desc.full_name == f"tensorflow.serving.{desc.name}"
    assert ours == UPSTREAM[desc.name]
