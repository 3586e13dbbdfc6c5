"""The REST API (model_servers/http_rest_api_handler.cc, http_rest_api_util.cc, http_server.cc).

- GET  /v1/models/NAME[/versions/N|/labels/L]            model status (labels ignored)
- GET  /v1/models/NAME[/versions/N|/labels/L]/metadata   signature_def of the version
- POST /v1/models/NAME[/versions/N|/labels/L]:predict    row or columnar JSON
- GET  <monitoring path>                                 Prometheus (monitoring.config)

Any other /v1/ path is "Malformed request" (400); errors are {"error": message} with the
HTTP status of model_servers/http_server.cc ToHTTPStatusCode.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from model_server.core import ServerCore
from model_server.errors import ServingError, invalid_argument
from model_server.grpc_api import SIGNATURE_DEF, metadata_response, status_response
from model_server.metrics import Metrics
from model_server.servable import DEFAULT_SIGNATURE
from model_server.wire import parse_json, request_inputs, response_json

# http_rest_api_util.cc ParseModelInfo: the path, case-insensitive like kPathRegex "(?i)/v1/.*"
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<subresource>/metadata)|:(?P<method>classify|regress|predict))?/?$",
    re.IGNORECASE,
)


def _json(message: Any) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _error(exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.http_status)


def _spec(name: str, version: str | None, label: str | None) -> Any:
    spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        spec.version.value = int(version)
    elif label is not None:
        spec.version_label = label
    return spec


def rest_app(core: ServerCore, metrics: Metrics, monitoring_path: str | None) -> Starlette:
    async def v1(request: Request) -> Response:
        path, verb = request.url.path, request.method
        match = _PATH.match(path)
        malformed = invalid_argument(f"Malformed request: {verb} {path}")
        if match is None or verb not in ("GET", "POST"):
            return _error(malformed)
        spec = _spec(match["name"], match["version"], match["label"])
        try:
            if verb == "GET" and match["method"] is None:
                if match["subresource"]:
                    meta = get_model_metadata_pb2.GetModelMetadataRequest(
                        model_spec=spec, metadata_field=[SIGNATURE_DEF]
                    )
                    return _text(_metadata_json(metadata_response(core, meta)))
                # Status of one version, or of all: a label in the path plays no part.
                status_spec = model_pb2.ModelSpec(name=spec.name)
                if spec.HasField("version"):
                    status_spec.version.value = spec.version.value
                status = get_model_status_pb2.GetModelStatusRequest(model_spec=status_spec)
                return _text(_json(status_response(core, status)))
            if verb == "POST" and (match["method"] or "").lower() == "predict":
                return await _predict(spec, request)
            if verb == "POST" and match["method"]:
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{match['method']} is not served by this model server",
                )
        except ServingError as exc:
            return _error(exc)
        return _error(malformed)

    async def _predict(spec: Any, request: Request) -> Response:
        started, served = time.perf_counter(), ""
        try:
            doc = parse_json(await request.body())
            signature = doc.get("signature_name", DEFAULT_SIGNATURE)
            if not isinstance(signature, str):
                raise invalid_argument(
                    "JSON Value: not formatted correctly. 'signature_name' key must be a "
                    "string value."
                )
            spec.signature_name = signature
            servable = core.servable(spec)
            served = servable.name
            sdef = servable.signature(signature)
            inputs, form = request_inputs(doc, sdef)
            outputs = await asyncio.to_thread(core.predict, servable, signature, inputs)
            body = response_json(outputs, form)
        except ServingError as exc:
            metrics.request(served, "predict", "rest", exc.code.name, started)
            return _error(exc)
        metrics.request(served, "predict", "rest", "OK", started)
        return _text(body)

    async def monitoring(request: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    routes = [Route("/v1/{rest:path}", v1, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
    if monitoring_path:
        routes.append(Route(monitoring_path, monitoring, methods=["GET"]))
    return Starlette(routes=routes)


def _metadata_json(response: Any) -> str:
    """GetModelMetadataResponse as TF Serving's REST writes it: the Any unpacked in place."""
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signatures)
    body = {
        "model_spec": json.loads(_json(response.model_spec)),
        "metadata": {SIGNATURE_DEF: json.loads(_json(signatures))},
    }
    return json.dumps(body, indent=1)


def _text(body: str) -> Response:
    return Response(body, media_type="application/json")
