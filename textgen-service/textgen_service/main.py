"""textgen-service application: create_app() for tests and servers, run() for the console script.

The lifespan loads the registry (which starts following model versions) and stops
it before closing the model client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.app import create_service_app, serve_app
from services.logging import configure_logging
from services.model_client import ModelClient, ModelRepository, create_model_client
from services.observability import Readiness
from services.openapi import limit_request_fields
from textgen_service import __version__
from textgen_service.api.routes import router
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings


def create_app(
    settings: TextgenSettings | None = None, client: ModelClient | None = None
) -> FastAPI:
    settings = settings or TextgenSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_client = client or create_model_client(settings)
        repository = ModelRepository(settings.model_repository)
        # Load, verify against the contract and warm up before accepting traffic; from
        # then on each model follows the version the model server serves.
        registry = await TextModelRegistry.load(settings, model_client, repository)
        app.state.registry = registry
        try:
            yield
        finally:
            app.state.registry = None
            await registry.close()  # no switch may start on a closing client
            await model_client.close()

    async def readiness() -> Readiness:
        registry: TextModelRegistry | None = getattr(app.state, "registry", None)
        if registry is None:
            return Readiness(False, {"models": "loading"})
        return Readiness(True, {name: f"v{m.version} ready" for name, m in registry.models.items()})

    app = create_service_app(
        service="textgen",
        title="Talkative textgen-service",
        version=__version__,
        description="Continues a prompt with a text model (char-LSTM today). "
        "Errors are application/problem+json.",
        settings=settings,
        readiness=readiness,
        lifespan=lifespan,
    )
    app.include_router(router)
    # Limits from the settings, in the document too (each model may allow fewer tokens).
    limit_request_fields(
        app,
        prompt={"maxLength": settings.max_prompt_chars},
        max_new_tokens={"maximum": settings.max_new_tokens_limit},
    )
    return app


def run() -> None:
    settings = TextgenSettings()
    configure_logging(settings.log_level, settings.log_format, "textgen-service")
    serve_app(create_app(settings), settings)
