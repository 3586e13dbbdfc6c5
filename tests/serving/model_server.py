"""A stand-in for tensorflow_model_server on 127.0.0.1, for tests (no TF Serving binary here).

It serves the same SavedModels (tf.saved_model.load) over the two wire protocols
the real server speaks, so the clients under test cannot tell the difference:

- gRPC with the official stubs of tensorflow-serving-api: PredictionService.Predict,
  PredictionService.GetModelMetadata and ModelService.GetModelStatus; tensors
  converted with tf.make_tensor_proto / tf.make_ndarray, independently of the
  client's own conversion code; dtypes checked against the signature as strictly
  as TF Serving does over gRPC;
- the documented REST API: /v1/models/{name}[/versions/{v}|/labels/{l}] for the
  status, .../metadata, and ...:predict with columnar "inputs" or row "instances",
  {"b64": ...} for strings, outputs named *_bytes answered in base64, errors as
  {"error": message}.

Signature metadata is read from saved_model.pb itself, as TF Serving does. Tests
can stop and restart it on the same ports (a model server that goes away) and
hold predictions until released (a model server that is too slow).
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from concurrent import futures
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.support.servers import free_port, serve

DEFAULT_SIGNATURE = "serving_default"
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Servable:
    name: str
    version: int
    loaded: Any
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]

    @classmethod
    def load(cls, name: str, version: int, path: Path) -> Servable:
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        defs = {
            k: v
            for k, v in proto.meta_graphs[0].signature_def.items()
            if k != "__saved_model_init_op"
        }
        return cls(name, version, tf.saved_model.load(str(path)), defs)


@dataclass
class ModelServerState:
    """The models, the version labels (as in models.config) and the test's levers."""

    models: dict[str, dict[int, Servable]]
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    predictions: int = 0

    def resolve(self, name: str, version: int | None, label: str | None) -> Servable:
        versions = self.models.get(name)
        if not versions:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({name})",
            )
        if label:
            if label not in self.labels.get(name, {}):
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {label}",
                )
            version = self.labels[name][label]
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({name}, {version})",
            )
        return versions[version]

    def predict(
        self, servable: Servable, signature: str, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        signature = signature or DEFAULT_SIGNATURE
        sdef = servable.signature_defs.get(signature)
        if sdef is None:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature name: "{signature}" not found in signature def',
            )
        missing = set(sdef.inputs) - set(inputs)
        extra = set(inputs) - set(sdef.inputs)
        if missing or extra:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input keys mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}",
            )
        for key, value in inputs.items():
            wanted = tf.dtypes.as_dtype(sdef.inputs[key].dtype)
            if tf.dtypes.as_dtype(value.dtype if value.dtype != object else tf.string) != wanted:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Expects arg {key} to be {wanted.name} but {value.dtype} is provided",
                )
        self.gate.wait()  # a test holds this to play a model server that is too slow
        self.predictions += 1
        fn = servable.loaded.signatures[signature]
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        return {k: v.numpy() for k, v in outputs.items()}

    def metadata(self, servable: Servable) -> tuple[model_pb2.ModelSpec, Any]:
        spec = model_pb2.ModelSpec(name=servable.name)
        spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        return spec, signatures

    def status(self, name: str, version: int | None, label: str | None) -> Any:
        if version is not None or label:
            chosen = [self.resolve(name, version, label).version]
        else:
            self.resolve(name, None, None)
            chosen = sorted(self.models[name], reverse=True)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in chosen:
            entry = response.model_version_status.add(version=v)
            entry.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def _spec_selector(spec: model_pb2.ModelSpec) -> tuple[int | None, str | None]:
    which = spec.WhichOneof("version_choice")
    if which == "version":
        return spec.version.value, None
    if which == "version_label":
        return None, spec.version_label
    return None, None


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, state: ModelServerState) -> None:
        self.state = state

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            servable = self.state.resolve(
                request.model_spec.name, *_spec_selector(request.model_spec)
            )
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = self.state.predict(servable, request.model_spec.signature_name, inputs)
        except ServingError as exc:
            context.abort(exc.code, exc.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(self.state.metadata(servable)[0])
        response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is required"
            )
        try:
            servable = self.state.resolve(
                request.model_spec.name, *_spec_selector(request.model_spec)
            )
        except ServingError as exc:
            context.abort(exc.code, exc.message)
        spec, signatures = self.state.metadata(servable)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=spec)
        response.metadata["signature_def"].Pack(signatures)
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, state: ModelServerState) -> None:
        self.state = state

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            return self.state.status(request.model_spec.name, *_spec_selector(request.model_spec))
        except ServingError as exc:
            context.abort(exc.code, exc.message)


# /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata|:predict]
_REST_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>/metadata|:predict|:classify|:regress)?$"
)


def _decode_rest(value: Any, tensor: meta_graph_pb2.TensorInfo) -> np.ndarray:
    dtype = tf.dtypes.as_dtype(tensor.dtype)
    if dtype != tf.string:
        return np.asarray(value, dtype=dtype.as_numpy_dtype)

    def decode(v: Any) -> Any:
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict):
            if set(v) != {"b64"}:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "JSON object: expected b64")
            return base64.b64decode(v["b64"], validate=True)
        if isinstance(v, str):
            return v.encode("utf-8")
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"not a string value: {v!r}")

    return np.array(decode(value), dtype=object)


def _encode_rest(name: str, value: np.ndarray) -> Any:
    if value.dtype != object:
        return value.tolist()
    binary = name.endswith("_bytes")  # TF Serving's rule for answering strings in base64
    out = np.empty(value.shape, dtype=object)
    for index, item in np.ndenumerate(value):
        out[index] = (
            {"b64": base64.b64encode(item).decode("ascii")} if binary else item.decode("utf-8")
        )
    return out.tolist()


def rest_app(state: ModelServerState) -> Starlette:
    def error(exc: ServingError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=_HTTP_STATUS.get(exc.code, 500))

    async def models(request: Request) -> JSONResponse:
        match = _REST_PATH.match(request.url.path)
        if match is None:
            return JSONResponse({"error": "Malformed request"}, status_code=404)
        name, verb, label = match["name"], match["verb"], match["label"]
        version = int(match["version"]) if match["version"] else None
        try:
            if verb is None and request.method == "GET":
                status = state.status(name, version, label)
                return JSONResponse(
                    json_format.MessageToDict(
                        status,
                        always_print_fields_with_no_presence=True,
                        preserving_proto_field_name=True,
                    )
                )
            servable = state.resolve(name, version, label)
            if verb == "/metadata" and request.method == "GET":
                spec, signatures = state.metadata(servable)
                as_dict = {
                    "model_spec": json_format.MessageToDict(
                        spec,
                        always_print_fields_with_no_presence=True,
                        preserving_proto_field_name=True,
                    ),
                    "metadata": {
                        "signature_def": json_format.MessageToDict(
                            signatures,
                            always_print_fields_with_no_presence=True,
                            preserving_proto_field_name=True,
                        )
                    },
                }
                return JSONResponse(as_dict)
            if verb == ":predict" and request.method == "POST":
                return await predict(servable, request)
        except ServingError as exc:
            return error(exc)
        return JSONResponse({"error": "Malformed request"}, status_code=404)

    async def predict(servable: Servable, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "JSON Parse error"}, status_code=400)
        signature = body.get("signature_name", "") or DEFAULT_SIGNATURE
        sdef = servable.signature_defs.get(signature)
        if sdef is None:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature name: "{signature}" not found in signature def',
            )
        if ("inputs" in body) == ("instances" in body):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Missing 'inputs' or 'instances' key (exactly one is required)",
            )
        if "inputs" in body:
            columns = body["inputs"]
            if not isinstance(columns, dict):  # a lone input may come unnamed
                columns = {next(iter(sdef.inputs)): columns}
        else:
            rows = body["instances"]
            if rows and not isinstance(rows[0], dict):
                rows = [{next(iter(sdef.inputs)): r} for r in rows]
            columns = {k: [row.get(k) for row in rows] for k in sdef.inputs}
        inputs = {
            k: _decode_rest(v, sdef.inputs[k]) if k in sdef.inputs else np.asarray(v)
            for k, v in columns.items()
        }
        outputs = await asyncio.to_thread(state.predict, servable, signature, inputs)
        encoded = {k: _encode_rest(k, v) for k, v in outputs.items()}
        if "instances" in body:
            count = len(next(iter(encoded.values())))
            predictions = [{k: v[i] for k, v in encoded.items()} for i in range(count)]
            return JSONResponse({"predictions": predictions})
        return JSONResponse(
            {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
        )

    return Starlette(routes=[Route("/v1/models/{path:path}", models, methods=["GET", "POST"])])


class TestModelServer(AbstractContextManager["TestModelServer"]):
    """Serves every model of a repository (<root>/<name>/<version>/) on gRPC and REST ports."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, root: Path, *, labels: dict[str, dict[str, int]] | None = None) -> None:
        models: dict[str, dict[int, Servable]] = {}
        for model_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
            for version_dir in model_dir.iterdir():
                if version_dir.name.isdigit() and (version_dir / "saved_model.pb").exists():
                    models.setdefault(model_dir.name, {})[int(version_dir.name)] = Servable.load(
                        model_dir.name, int(version_dir.name), version_dir
                    )
        self.state = ModelServerState(models=models, labels=labels or {})
        self.state.gate.set()
        self.grpc_port, self.rest_port = free_port(), free_port()
        self._grpc: grpc.Server | None = None
        self._rest: AbstractContextManager[str] | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self) -> TestModelServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.state), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self.state), server)
        server.add_insecure_port(self.grpc_target)
        server.start()
        self._grpc = server
        self._rest = serve(rest_app(self.state), port=self.rest_port)
        self._rest.__enter__()
        return self

    def stop(self) -> None:
        self.state.gate.set()  # let held calls finish so the servers can stop
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait()
            self._grpc = None
        if self._rest is not None:
            self._rest.__exit__(None, None, None)
            self._rest = None

    def hold(self) -> None:
        """Predictions wait until release(): a model server slower than any deadline."""
        self.state.gate.clear()

    def release(self) -> None:
        self.state.gate.set()

    def __enter__(self) -> TestModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
