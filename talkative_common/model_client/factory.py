"""Pick the backend a service's settings ask for."""

from __future__ import annotations

from talkative_common.model_client.base import ModelClient
from talkative_common.model_client.remote import RemoteOptions
from talkative_common.model_client.repository import ModelRepository
from talkative_common.settings import ModelServiceSettings


def create_model_client(settings: ModelServiceSettings) -> ModelClient:
    if settings.model_backend == "inprocess":
        from talkative_common.model_client.inprocess import InProcessClient

        return InProcessClient(
            ModelRepository(settings.model_repository),
            timeout_s=settings.model_timeout_s,
            max_parallel=settings.max_concurrency,
            default_version=settings.model_version,
        )
    options = RemoteOptions(
        timeout_s=settings.model_timeout_s,
        retries=settings.model_retries,
        backoff_s=settings.model_retry_backoff_s,
        default_version=settings.model_version,
        version_label=settings.model_version_label,
    )
    if settings.model_backend == "grpc":
        from talkative_common.model_client.grpc import GrpcClient

        return GrpcClient(
            settings.model_server_grpc_target
            or f"{settings.model_server_host}:{settings.model_server_grpc_port}",
            options,
            keepalive_s=settings.model_keepalive_s,
            reconnect_backoff_max_s=settings.model_reconnect_backoff_max_s,
        )
    if settings.model_backend == "rest":
        from talkative_common.model_client.rest import RestClient

        return RestClient(
            f"http://{settings.model_server_host}:{settings.model_server_rest_port}",
            options,
            max_connections=max(8, settings.max_concurrency * 2),
        )
    raise ValueError(f"unknown model backend {settings.model_backend!r}")
