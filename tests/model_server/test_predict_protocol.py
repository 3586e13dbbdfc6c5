"""Predict and GetModelMetadata over gRPC (official stubs) and REST (plain HTTP) against the
real `talkative model-server`: answers, error codes, metadata and JSON number forms.
Each test names the TF Serving behaviour it pins and the upstream file."""

from __future__ import annotations

import base64
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from tests.model_server.grpc_client import Stubs, rpc_error, spec
from tests.support.model_server import ModelServerProcess, write_config


@pytest.fixture(scope="module")
def server(
    probe_version: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServerProcess]:
    root = tmp_path_factory.mktemp("predict")
    shutil.copytree(probe_version, root / "models" / "probe" / "1")
    config = write_config(
        root / "models.config", root / "models", {"probe": [1]}, {"probe": {"stable": 1}}
    )
    with ModelServerProcess(config) as running:
        yield running


@pytest.fixture(scope="module")
def stubs(server: ModelServerProcess) -> Iterator[Stubs]:
    client = Stubs(server.grpc_target)
    yield client
    client.close()


IDS = {"ids": np.array([[1, 2], [3, 4]], np.int32)}


def test_predict_answers_the_version_and_typed_value_fields(stubs):
    """predict_util.cc RunPredict: the response's model_spec has name, version and the
    signature used; outputs are written with Tensor::AsProtoField (typed value fields, not
    tensor_content), server.cc's default."""
    response = stubs.predict_raw(spec("probe", label="stable", signature="batch"), IDS)
    assert (response.model_spec.name, response.model_spec.version.value) == ("probe", 1)
    assert response.model_spec.signature_name == "batch"
    sums = response.outputs["sums"]
    assert list(sums.int_val) == [3, 7] and not sums.tensor_content
    default = stubs.predict_raw(spec("probe"), {"x": np.ones((1, 2), np.float32)})
    assert default.model_spec.signature_name == "serving_default"


@pytest.mark.parametrize(
    ("model_spec", "inputs", "code", "message"),
    [
        (spec("nope"), IDS, "NOT_FOUND", "Servable not found for request: Latest(nope)"),
        (
            spec("probe", version=9, signature="batch"),
            IDS,
            "NOT_FOUND",
            "Servable not found for request: Specific(probe, 9)",
        ),
        (
            spec("probe", label="gold", signature="batch"),
            IDS,
            "INVALID_ARGUMENT",
            "Unrecognized servable version label: gold",
        ),
        (
            spec("probe", signature="nope"),
            IDS,
            "FAILED_PRECONDITION",
            'Serving signature key "nope" not found.',
        ),
        (
            spec("probe", signature="__saved_model_init_op"),
            IDS,
            "FAILED_PRECONDITION",
            'Serving signature key "__saved_model_init_op" not found.',
        ),
        (
            spec("probe", signature="batch"),
            {"ids": np.ones((1, 2), np.float32)},
            "INVALID_ARGUMENT",
            "to be int32 but float32 is provided",
        ),
        (
            spec("probe", signature="batch"),
            {"ids": np.ones((2,), np.int32)},
            "INVALID_ARGUMENT",
            "must have rank 2",
        ),
        (
            spec("probe", signature="batch"),
            {"wrong": np.ones((1, 2), np.int32)},
            "INVALID_ARGUMENT",
            "input size does not match signature",
        ),
        (
            spec("probe", signature="batch"),
            {},
            "INVALID_ARGUMENT",
            "Missing but required: {ids}",
        ),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "unknown-label",
        "unknown-signature",
        "init-op-is-no-signature",
        "wrong-dtype",
        "wrong-rank",
        "wrong-input-name",
        "missing-input",
    ],
)
def test_predict_errors_carry_tf_servings_codes(stubs, model_spec, inputs, code, message):
    """basic_manager.cc (NOT_FOUND), server_core.cc GetModelVersionForLabel (INVALID_ARGUMENT),
    predict_util.cc (FAILED_PRECONDITION for the signature, INVALID_ARGUMENT for inputs)."""
    error = rpc_error(lambda: stubs.predict(model_spec, inputs))
    assert error.code().name == code
    assert message in error.details()
    assert stubs.status(spec("probe")) == {1: ("AVAILABLE", "")}  # and the server lives on


def test_output_filter(stubs):
    """predict_util.cc PreProcessPrediction: output_filter picks outputs; an unknown alias is
    INVALID_ARGUMENT."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest(model_spec=spec("probe", signature="batch"))
    request.inputs["ids"].CopyFrom(tf.make_tensor_proto(IDS["ids"]))
    request.output_filter.append("sums")
    assert set(stubs.prediction.Predict(request).outputs) == {"sums"}
    request.output_filter.append("nope")
    error = rpc_error(lambda: stubs.prediction.Predict(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: nope" in error.details()


def test_metadata_includes_the_init_op_and_resolves_labels(stubs):
    """get_model_metadata_impl.cc: every signature_def of the meta graph, the TF2 init op
    `__saved_model_init_op` included; the response names the version a label resolved to."""
    signatures = stubs.signatures(spec("probe", label="stable"))
    assert set(signatures) == {
        "__saved_model_init_op",
        "serving_default",
        "strings",
        "batch",
        "wait",
    }
    assert stubs.metadata(spec("probe", label="stable")).model_spec.version.value == 1
    assert dict(signatures["batch"].inputs)["ids"].dtype == 3  # DT_INT32


def test_metadata_request_checks(stubs):
    """get_model_metadata_impl.cc ValidateGetModelMetadataRequest."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    none = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec("probe"))
    error = rpc_error(lambda: stubs.prediction.GetModelMetadata(none))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "GetModelMetadataRequest must specify at least one metadata_field"
    other = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=spec("probe"), metadata_field=["graph"]
    )
    error = rpc_error(lambda: stubs.prediction.GetModelMetadata(other))
    assert error.details() == "Metadata field graph is not supported"


def test_nan_and_infinity_over_grpc(stubs):
    """Floats travel as IEEE values in float_val: NaN and the infinities come back intact."""
    x = np.array([[math.nan, math.inf, -math.inf, 1.5]], np.float32)
    y = stubs.predict(spec("probe"), {"x": x})["y"]
    assert np.isnan(y[0, 0]) and y[0, 1] == math.inf and y[0, 2] == -math.inf and y[0, 3] == 1.5


# ---- REST ---------------------------------------------------------------------------------


def test_rest_nan_infinity_and_float_digits(server):
    """util/json_tensor.cc WriteDecimal: NaN, Infinity and -Infinity written bare (rapidjson
    kWriteNanAndInfFlag), six significant digits, ".0" on whole numbers; requests may carry
    NaN and Infinity too (kParseNanAndInfFlag)."""
    body = '{"inputs": {"x": [[NaN, Infinity, -Infinity, 1, 3.14159265, 1e-7, 2500000]]}}'
    response = httpx.post(f"{server.rest_url}/v1/models/probe:predict", content=body)
    assert response.status_code == 200, response.text
    compact = "".join(response.text.split())
    assert compact == '{"outputs":[[NaN,Infinity,-Infinity,1.0,3.14159,1e-07,2.5e+06]]}'


def test_rest_columnar_and_row_forms_with_base64(server):
    """util/json_tensor.cc: "inputs" answers "outputs" (an object when several), "instances"
    answers "predictions" (one object per row); {"b64": ...} strings in, and base64 out
    only for outputs named *_bytes."""
    url = f"{server.rest_url}/v1/models/probe/versions/1:predict"
    raw = b"\xff\x00caf\xc3\xa9"
    b64 = base64.b64encode(raw).decode()
    columnar = httpx.post(
        url, json={"signature_name": "strings", "inputs": {"s": [{"b64": b64}, "plain"]}}
    )
    assert columnar.status_code == 200, columnar.text
    outputs = columnar.json()["outputs"]
    assert outputs["raw_bytes"] == [{"b64": b64}, {"b64": base64.b64encode(b"plain").decode()}]
    assert outputs["text"][1] == "plain"
    rows = httpx.post(url, json={"signature_name": "batch", "instances": [[1, 2], [3, 4]]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert [p["sums"] for p in predictions] == [3, 7]
    assert set(predictions[0]) == {"batch", "width", "total", "sums"}
    named = httpx.post(url, json={"signature_name": "batch", "instances": [{"ids": [1, 2]}]})
    assert named.json()["predictions"][0]["sums"] == 3


def test_rest_status_metadata_and_labels(server):
    """http_rest_api_handler.cc: GET .../models/NAME[/versions/N|/labels/L] is the status,
    .../metadata the signature_def map (version as a string, int64 in JSON)."""
    base = f"{server.rest_url}/v1/models/probe"
    status = httpx.get(base).json()
    assert status == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    meta = httpx.get(f"{base}/labels/stable/metadata").json()
    assert meta["model_spec"]["version"] == "1"
    assert "__saved_model_init_op" in meta["metadata"]["signature_def"]["signature_def"]
    assert httpx.get(f"{base}/versions/1/metadata").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        (
            "GET",
            "/v1/models/nope/metadata",
            None,
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "POST",
            "/v1/models/probe/labels/gold:predict",
            "{}",
            400,
            "Unrecognized servable version label: gold",
        ),
        (
            "GET",
            "/v1/models/probe:predict",
            None,
            400,
            "Malformed request: GET /v1/models/probe:predict",
        ),
        ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
        ("POST", "/v1/models/probe:predict", "", 400, "JSON Parse error: The document is empty"),
        ("POST", "/v1/models/probe:predict", "{nope", 400, "JSON Parse error"),
        ("POST", "/v1/models/probe:predict", "[1]", 400, "Is not object"),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"inputs": [[1]], "instances": [[1]]}',
            400,
            "expecting only one of 'inputs' or 'instances' keys",
        ),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"signature_name": "nope", "inputs": [[1]]}',
            400,
            'Serving signature key "nope" not found.',
        ),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"inputs": [["a"]]}',
            400,
            "is not of expected type: float",
        ),
        ("POST", "/v1/models/probe:predict", '{"inputs": [[1], [1, 2]]}', 400, "uniform shape"),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"signature_name": "strings", "inputs": {"s": [{"b64": "%%"}]}}',
            400,
            "Unable to base64 decode",
        ),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"signature_name": 3, "inputs": [[1]]}',
            400,
            "'signature_name' key must be a string value",
        ),
        (
            "POST",
            "/v1/models/probe/versions/1:predict",
            '{"instances": []}',
            400,
            "No values in 'instances' array",
        ),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"signature_name": "batch", "instances": [[2147483648]]}',
            400,
            "is not of expected type: int32",
        ),
        (
            "POST",
            "/v1/models/probe:predict",
            '{"x": 1}',
            400,
            "Missing 'inputs' or 'instances' key",
        ),
    ],
)
def test_rest_errors_have_tf_servings_status_and_body(server, method, path, body, status, message):
    """http_server.cc ToHTTPStatusCode (NOT_FOUND 404, INVALID_ARGUMENT and
    FAILED_PRECONDITION 400) and the {"error": message} body of MakeJsonFromStatus."""
    response = httpx.request(method, f"{server.rest_url}{path}", content=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_rest_metrics_are_served_where_monitoring_config_says(tmp_path, probe_version):
    """server.cc + monitoring_config.proto: prometheus_config { enable path } serves
    Prometheus text on the REST port; request counts carry the model name."""
    shutil.copytree(probe_version, tmp_path / "models" / "probe" / "1")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(
        'prometheus_config { enable: true path: "/metrics/tfs" }\n', encoding="utf-8"
    )
    config = write_config(tmp_path / "models.config", tmp_path / "models", {"probe": [1]})
    with ModelServerProcess(
        config, extra_flags=[f"--monitoring_config_file={monitoring}"]
    ) as server:
        httpx.post(f"{server.rest_url}/v1/models/probe:predict", json={"inputs": [[1.0]]})
        httpx.post(f"{server.rest_url}/v1/models/made-up:predict", json={"inputs": [[1.0]]})
        text = httpx.get(f"{server.rest_url}/metrics/tfs").text
    assert (
        ':tensorflow:serving:request_count_total{API="predict",entrypoint="rest",'
        'model_name="probe",status="OK"} 1.0' in text
    )
    assert "made-up" not in text  # a made-up name in a request never becomes a series
    assert ':tensorflow:serving:model_load_latency_count{model_name="probe"} 1.0' in text
    assert (
        ':tensorflow:serving:model_warmup_requests_total{model_name="probe",model_version="1"} 3.0'
        in text
    )
