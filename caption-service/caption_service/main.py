"""caption-service application: create_app() for tests and servers, run() for the console script.

The lifespan (talkative_common.model_service) builds the captioner of the version the model server
serves and follows that version (talkative_common.model_client.followed) until shutdown.
Every version it builds shares the app's one SceneDetection (OpenCV's cascades, loaded once,
for exports whose card asks for detections).
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from caption_service import __version__
from caption_service.api.routes import router
from caption_service.captioner import CaptionModel, SceneDetection, build_captioner
from caption_service.settings import CaptionSettings
from talkative_common.app import run_service
from talkative_common.images import DecodeBudget
from talkative_common.model_client import (
    FollowedVersion,
    ModelClient,
    ModelRepository,
    version_poll_interval,
)
from talkative_common.model_service import ModelLoader, create_model_service


def create_app(
    settings: CaptionSettings | None = None, client: ModelClient | None = None
) -> FastAPI:
    settings = settings or CaptionSettings()

    async def load(
        model_client: ModelClient, repository: ModelRepository
    ) -> FollowedVersion[CaptionModel]:
        captioner = FollowedVersion(
            settings.model,
            model_client,
            partial(build_captioner, settings.model, model_client, repository, detection=detection),
            poll_s=version_poll_interval(settings, model_client),
        )
        await captioner.start()  # verified against the contract and warmed up
        return captioner

    def ready(captioner: FollowedVersion[CaptionModel]) -> dict[str, str]:
        model = captioner.current
        return {model.name: f"v{model.version} ready"}

    app = create_model_service(
        settings,
        client,
        router,
        ModelLoader("captioner", load, ready),
        service="caption",
        version=__version__,
        description="Ranked captions of a photo (multipart field `image`).",
    )
    # Bound before the lifespan calls `load`: one detector per app, its time in /metrics.
    detection = SceneDetection(app.state.metrics.registry)
    # One per app, so one per caption-service process: big uploads take turns.
    app.state.decode_budget = DecodeBudget(
        settings.decode_budget_bytes, timeout_s=settings.queue_timeout_s
    )
    return app


def run() -> None:
    run_service("caption-service", CaptionSettings(), create_app)
