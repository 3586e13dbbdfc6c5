"""Pick the backend a service's settings ask for."""

from __future__ import annotations

from services.model_client.base import ModelClient
from services.model_client.repository import ModelRepository
from services.settings import ModelServiceSettings


def create_model_client(settings: ModelServiceSettings) -> ModelClient:
    if settings.model_backend == "inprocess":
        from services.model_client.inprocess import InProcessClient

        return InProcessClient(
            ModelRepository(settings.model_repository),
            timeout_s=settings.model_timeout_s,
            max_parallel=settings.max_concurrency,
        )
    raise ValueError(f"unknown model backend {settings.model_backend!r}")
