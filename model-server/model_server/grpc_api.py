"""The gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest), with the official tensorflow-serving-api classes.

Follows model_servers/prediction_service_impl.cc, servables/tensorflow/predict_util.cc,
servables/tensorflow/get_model_metadata_impl.cc, model_servers/get_model_status_impl.cc
and model_servers/model_service_impl.cc. Classify, Regress and MultiInference are not
served: our models have only predict signatures (the stubs answer UNIMPLEMENTED).
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from model_server.core import ServerCore, VersionStatus
from model_server.errors import ServingError, invalid_argument
from model_server.metrics import Metrics
from model_server.servable import DEFAULT_SIGNATURE
from model_server.wire import from_tensor_proto, to_tensor_proto

SIGNATURE_DEF = "signature_def"  # GetModelMetadataImpl::kSignatureDef


def _abort(context: grpc.ServicerContext, exc: ServingError) -> NoReturn:
    context.abort(exc.code, exc.message)
    raise AssertionError("unreachable")  # context.abort raises


def metadata_response(core: ServerCore, request: Any) -> Any:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF:
            raise invalid_argument(f"Metadata field {field} is not supported")
    servable = core.servable(request.model_spec)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        signatures.signature_def[key].CopyFrom(value)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF].Pack(signatures)
    return response


def status_response(core: ServerCore, request: Any) -> Any:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, status in core.status(spec.name, version):
        entry = response.model_version_status.add(version=number)
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
        _fill_status(entry.status, status)
    return response


def _fill_status(proto: Any, status: VersionStatus) -> None:
    proto.SetInParent()  # always present, OK included (get_model_status_impl.cc ToStatusProto)
    if status.error is not None:
        proto.error_code = status.error.code.value[0]
        proto.error_message = status.error.message


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServerCore, metrics: Metrics, *, tensor_content: bool) -> None:
        self.core, self.metrics, self.tensor_content = core, metrics, tensor_content

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started = time.perf_counter()
        served = ""  # a metric label only once the model is known to exist
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            servable = self.core.servable(request.model_spec)
            served = servable.name
            signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            sdef = servable.signature(signature)
            inputs = {k: from_tensor_proto(k, v) for k, v in request.inputs.items()}
            outputs = self.core.predict(servable, signature, inputs)
            wanted = list(request.output_filter)
            for alias in wanted:
                if alias not in sdef.outputs:
                    raise invalid_argument(
                        f"output tensor alias not found in signature: {alias} Outputs expected "
                        f"to be in the set {{{','.join(sorted(sdef.outputs))}}}."
                    )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for key, value in outputs.items():
                if wanted and key not in wanted:
                    continue
                response.outputs[key].CopyFrom(
                    to_tensor_proto(value, as_content=self.tensor_content)
                )
        except ServingError as exc:
            self.metrics.request(served, "predict", "grpc", exc.code.name, started)
            _abort(context, exc)
        self.metrics.request(served, "predict", "grpc", "OK", started)
        return response

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            return metadata_response(self.core, request)
        except ServingError as exc:
            _abort(context, exc)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self.core = core

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            return status_response(self.core, request)
        except ServingError as exc:
            _abort(context, exc)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """model_service_impl.cc: the outcome travels in the response's status, not as an error."""
        response = model_management_pb2.ReloadConfigResponse()
        try:
            self.core.reload_config(request.config)
        except ServingError as exc:
            response.status.error_code = exc.code.value[0]
            response.status.error_message = exc.message
        return response
