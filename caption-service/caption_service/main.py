"""caption-service application: create_app() for tests and servers, run() for the console script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from caption_service import __version__
from caption_service.api.routes import router
from caption_service.captioner import CaptionModel
from caption_service.settings import CaptionSettings
from services.app import create_service_app
from services.logging import configure_logging
from services.model_client import ModelClient, ModelRepository, create_model_client
from services.observability import Readiness


def create_app(
    settings: CaptionSettings | None = None, client: ModelClient | None = None
) -> FastAPI:
    settings = settings or CaptionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_client = client or create_model_client(settings)
        model = CaptionModel(
            settings.model, model_client, ModelRepository(settings.model_repository)
        )
        # Verify against the contract and warm up before accepting traffic.
        await model.verify()
        await model.warmup()
        app.state.model = model
        try:
            yield
        finally:
            app.state.model = None
            await model_client.close()

    async def readiness() -> Readiness:
        model: CaptionModel | None = getattr(app.state, "model", None)
        if model is None:
            return Readiness(False, {"captioner": "loading"})
        return Readiness(True, {model.name: f"v{model.version} ready"})

    app = create_service_app(
        service="caption",
        title="Talkative caption-service",
        version=__version__,
        description="Ranked captions of a photo (multipart field `image`). "
        "Errors are application/problem+json.",
        settings=settings,
        readiness=readiness,
        lifespan=lifespan,
    )
    app.include_router(router)
    return app


def run() -> None:
    settings = CaptionSettings()
    configure_logging(settings.log_level, settings.log_format, "caption-service")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
