"""caption-service application: create_app() for tests and servers, run() for the console script.

The lifespan builds the captioner of the version the model server serves and follows
that version (services.model_client.followed) until shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from caption_service import __version__
from caption_service.api.routes import router
from caption_service.captioner import CaptionModel, build_captioner
from caption_service.settings import CaptionSettings
from services.app import create_service_app, serve_app
from services.images import DecodeBudget
from services.logging import configure_logging
from services.model_client import (
    FollowedVersion,
    ModelClient,
    ModelRepository,
    create_model_client,
    version_poll_interval,
)
from services.observability import Readiness


def create_app(
    settings: CaptionSettings | None = None, client: ModelClient | None = None
) -> FastAPI:
    settings = settings or CaptionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_client = client or create_model_client(settings)
        repository = ModelRepository(settings.model_repository)
        captioner = FollowedVersion(
            settings.model,
            model_client,
            partial(build_captioner, settings.model, model_client, repository),
            poll_s=version_poll_interval(settings, model_client),
        )
        # Verify against the contract and warm up before accepting traffic.
        await captioner.start()
        app.state.captioner = captioner
        try:
            yield
        finally:
            app.state.captioner = None
            await captioner.close()  # no switch may start on a closing client
            await model_client.close()

    async def readiness() -> Readiness:
        captioner: FollowedVersion[CaptionModel] | None = getattr(app.state, "captioner", None)
        if captioner is None:
            return Readiness(False, {"captioner": "loading"})
        model = captioner.current
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
    # One per app, so one per caption-service process: big uploads take turns.
    app.state.decode_budget = DecodeBudget(
        settings.decode_budget_bytes, timeout_s=settings.queue_timeout_s
    )
    return app


def run() -> None:
    settings = CaptionSettings()
    configure_logging(settings.log_level, settings.log_format, "caption-service")
    serve_app(create_app(settings), settings)
