"""textgen-service application: create_app() for tests and servers, run() for the console script.

The lifespan (talkative_common.model_service) loads the registry, which starts following model
versions, and stops it before closing the model client.
"""

from __future__ import annotations

from fastapi import FastAPI

from talkative_common.app import run_service
from talkative_common.model_client import ModelClient, ModelRepository
from talkative_common.model_service import ModelLoader, create_model_service
from talkative_common.openapi import limit_request_fields
from textgen_service import __version__
from textgen_service.api.routes import router
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings


def create_app(
    settings: TextgenSettings | None = None, client: ModelClient | None = None
) -> FastAPI:
    settings = settings or TextgenSettings()

    async def load(model_client: ModelClient, repository: ModelRepository) -> TextModelRegistry:
        return await TextModelRegistry.load(settings, model_client, repository)

    def ready(registry: TextModelRegistry) -> dict[str, str]:
        return {name: f"v{m.version} ready" for name, m in registry.models.items()}

    app = create_model_service(
        settings,
        client,
        router,
        ModelLoader("registry", load, ready, loading={"models": "loading"}),
        service="textgen",
        version=__version__,
        description="Continues a prompt with a text model (char-LSTM today).",
    )
    # Limits from the settings, in the document too (each model may allow fewer tokens).
    limit_request_fields(
        app,
        prompt={"maxLength": settings.max_prompt_chars},
        max_new_tokens={"maximum": settings.max_new_tokens_limit},
    )
    return app


def run() -> None:
    run_service("textgen-service", TextgenSettings(), create_app)
