"""TensorFlow Serving over gRPC: PredictionService.Predict and GetModelMetadata.

One channel per client, opened on first use in the running event loop and kept:
HTTP/2 multiplexes every concurrent call over it. Keepalive pings (only while
calls are in flight, which TF Serving's default ping policy accepts) detect a
dead connection behind a NAT or a restarted container; the reconnection backoff
is capped so a model server that comes back is used again within seconds.
Calls fail fast (no wait_for_ready) when the server is down, so a service can
answer 503 at once instead of holding its clients until the deadline.

The target may name several model servers: `ipv4:10.0.0.1:8500,10.0.0.2:8500`, or a
DNS name that resolves to several (`dns:///tfserving:8500`, a Kubernetes headless
Service). gRPC's `round_robin` policy spreads calls over every server it can reach and
skips one whose connection failed, so a killed replica costs a retry, not a story.
With one address it behaves as a plain connection.

No generated stubs and no TensorFlow: each method is a `channel.unary_unary` on the
path, request and response classes that `talkative_common.model_client.protos.tf_serving`
builds from TF Serving's own descriptors, so a service in this backend never loads
the TensorFlow runtime (see talkative_common/model_client/protos/__init__.py).
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from talkative_common.model_client.base import ModelClient, ModelNotFound, ModelUnavailable
from talkative_common.model_client.protos import tf_serving as pb
from talkative_common.model_client.remote import (
    RemoteOptions,
    Retryable,
    Selector,
    select,
    with_retries,
)
from talkative_common.model_client.tensors import (
    from_tensor_proto,
    signature_from_proto,
    to_tensor_proto,
)
from talkative_common.model_client.types import Inputs, Outputs, SignatureInfo

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
            ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
            # Re-resolve DNS when a server goes away, so new replicas are found soon.
            ("grpc.dns_min_time_between_resolutions_ms", 5000),
        ]
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    def _callable(self, method: pb.Method) -> grpc.aio.UnaryUnaryMultiCallable:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._channel_options)
            self._calls = {}
        call = self._calls.get(method.path)
        if call is None:
            call = self._calls[method.path] = self._channel.unary_unary(
                method.path,
                request_serializer=method.serialize,
                response_deserializer=method.deserialize,
            )
        return call

    @staticmethod
    def _spec(model: str, selector: Selector, signature: str = "") -> Any:
        spec = pb.ModelSpec(name=model, signature_name=signature)
        if selector.version is not None:
            spec.version.value = selector.version
        elif selector.label:
            spec.version_label = selector.label
        return spec

    async def _call(self, method: pb.Method, request: Any, what: str) -> Any:
        call = self._callable(method)

        async def attempt(left: float) -> Any:
            try:
                return await call(request, timeout=left, wait_for_ready=False)
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc, what) from exc

        return await with_retries(attempt, self.options, what)

    async def _metadata(self, model: str, selector: Selector) -> Any:
        request = pb.GetModelMetadataRequest(
            model_spec=self._spec(model, selector), metadata_field=["signature_def"]
        )
        return await self._call(
            pb.GET_MODEL_METADATA, request, f"metadata of model {model!r} ({selector})"
        )

    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        response = await self._metadata(model, select(self.options, version))
        signatures = pb.SignatureDefMap()
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
        self, model: str, inputs: Inputs, *, signature: str, version: int | None = None
    ) -> Outputs:
        selector = select(self.options, version)
        request = pb.PredictRequest(model_spec=self._spec(model, selector, signature))
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(to_tensor_proto(value))
        response = await self._call(pb.PREDICT, request, f"model {model!r} ({selector})")
        return {key: from_tensor_proto(t) for key, t in response.outputs.items()}

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel, self._calls = None, {}


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
