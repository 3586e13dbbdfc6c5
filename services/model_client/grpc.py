"""TensorFlow Serving over gRPC: PredictionService.Predict and GetModelMetadata.

One channel per client, opened on first use in the running event loop and kept:
HTTP/2 multiplexes every concurrent call over it. Keepalive pings (only while
calls are in flight, which TF Serving's default ping policy accepts) detect a
dead connection behind a NAT or a restarted container; the reconnection backoff
is capped so a model server that comes back is used again within seconds.
Calls fail fast (no wait_for_ready) when the server is down, so a service can
answer 503 at once instead of holding its clients until the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np

from services.model_client.base import (
    ModelClient,
    ModelNotFound,
    ModelUnavailable,
    SignatureInfo,
)
from services.model_client.remote import (
    RemoteOptions,
    Retryable,
    Selector,
    select,
    with_retries,
)
from services.model_client.tensors import (
    from_tensor_proto,
    signature_from_proto,
    to_tensor_proto,
)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # images in, caption batches out: far above either


class GrpcClient(ModelClient):
    backend = "grpc"

    def __init__(
        self,
        target: str,
        options: RemoteOptions | None = None,
        *,
        keepalive_s: float = 30.0,
        reconnect_backoff_max_s: float = 2.0,
    ) -> None:
        self.target, self.options = target, options or RemoteOptions()
        self._channel_options = [
            ("grpc.keepalive_time_ms", int(keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", int(reconnect_backoff_max_s * 1000)),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Retries are ours (deadline-aware, logged as one call): keep gRPC's off.
            ("grpc.enable_retries", 0),
        ]
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    def _prediction_stub(self) -> Any:
        if self._stub is None:
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            self._channel = grpc.aio.insecure_channel(self.target, options=self._channel_options)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        return self._stub

    @staticmethod
    def _spec(model: str, selector: Selector, signature: str = "") -> Any:
        from tensorflow_serving.apis import model_pb2

        spec = model_pb2.ModelSpec(name=model, signature_name=signature)
        if selector.version is not None:
            spec.version.value = selector.version
        elif selector.label:
            spec.version_label = selector.label
        return spec

    async def _call(self, method: str, request: Any, what: str) -> Any:
        stub = self._prediction_stub()

        async def attempt(left: float) -> Any:
            try:
                return await getattr(stub, method)(request, timeout=left, wait_for_ready=False)
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc, what) from exc

        return await with_retries(attempt, self.options, what)

    async def _metadata(self, model: str, selector: Selector) -> Any:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self._spec(model, selector), metadata_field=["signature_def"]
        )
        return await self._call(
            "GetModelMetadata", request, f"metadata of model {model!r} ({selector})"
        )

    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        from tensorflow_serving.apis import get_model_metadata_pb2

        response = await self._metadata(model, select(self.options, version))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(signatures):
            raise ModelUnavailable(f"model server sent no signature_def for {model!r}")
        if signature not in signatures.signature_def:
            raise ModelNotFound(
                f"model {model!r} has no signature {signature!r} "
                f"(has {sorted(signatures.signature_def)})"
            )
        return signature_from_proto(signatures.signature_def[signature])

    async def served_version(self, model: str) -> int:
        response = await self._metadata(model, select(self.options, None))
        return int(response.model_spec.version.value)

    async def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        signature: str,
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        from tensorflow_serving.apis import predict_pb2

        selector = select(self.options, version)
        request = predict_pb2.PredictRequest(model_spec=self._spec(model, selector, signature))
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(to_tensor_proto(value))
        response = await self._call("Predict", request, f"model {model!r} ({selector})")
        return {key: from_tensor_proto(t) for key, t in response.outputs.items()}

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._stub = None


def _translate(exc: grpc.aio.AioRpcError, what: str) -> Exception:
    code, details = exc.code(), exc.details() or ""
    message = f"{what}: {code.name} {details}".strip()
    if code == grpc.StatusCode.UNAVAILABLE:
        return Retryable(message)
    if code == grpc.StatusCode.NOT_FOUND or (
        # TF Serving answers an unknown label with INVALID_ARGUMENT
        code == grpc.StatusCode.INVALID_ARGUMENT and "version label" in details
    ):
        return ModelNotFound(message)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ValueError(message)  # the service built a bad request: a bug, not an outage
    # DEADLINE_EXCEEDED (the whole budget is spent), RESOURCE_EXHAUSTED (queue full, GPU memory),
    # INTERNAL, CANCELLED...: the model is not answering usefully now.
    return ModelUnavailable(message)
