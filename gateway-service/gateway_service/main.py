"""gateway application: create_app() for tests and servers, run() for the console script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from gateway_service import __version__
from gateway_service.api.routes import router
from gateway_service.catalogue import ModelCatalogue
from gateway_service.clients import CaptionClient, TextgenClient
from gateway_service.settings import GatewaySettings
from gateway_service.store import open_store
from gateway_service.stories import Chain
from talkative_common.app import create_service_app, serve_app
from talkative_common.logging import configure_logging
from talkative_common.observability import Readiness
from talkative_common.openapi import limit_request_fields

STATIC = Path(__file__).parent / "static"
# Readable without an API key when keys are set: the page, its files, and the cards (a
# card's random id is its capability, and cards are shared as links).
OPEN_PATHS = (r"/", r"/static/.*", r"/v1/stories/[^/]+/card\.png")


def build_chain(
    settings: GatewaySettings,
    caption_transport: httpx.AsyncBaseTransport | None = None,
    textgen_transport: httpx.AsyncBaseTransport | None = None,
) -> Chain:
    """The clients, model catalogue and story store; transports let `tell` run in-process."""
    common = {
        "connect_timeout_s": settings.connect_timeout_s,
        "retries": settings.retries,
        "backoff_s": settings.retry_backoff_s,
        "retry_after_s": settings.retry_after_s,
        "max_connections": settings.max_connections,
    }
    captions = CaptionClient(
        "caption-service",
        settings.caption_url,
        timeout_s=settings.caption_timeout_s,
        transport=caption_transport,
        **common,  # type: ignore[arg-type]
    )
    textgen = TextgenClient(
        "textgen-service",
        settings.textgen_url,
        timeout_s=settings.textgen_timeout_s,
        transport=textgen_transport,
        **common,  # type: ignore[arg-type]
    )
    return Chain(
        settings=settings,
        captions=captions,
        textgen=textgen,
        catalogue=ModelCatalogue(textgen, settings.models_cache_s),
        store=open_store(settings),
    )


def create_app(
    settings: GatewaySettings | None = None,
    caption_transport: httpx.AsyncBaseTransport | None = None,
    textgen_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chain = app.state.chain = build_chain(settings, caption_transport, textgen_transport)
        watchdogs = [
            asyncio.create_task(
                client.watch(
                    settings.probe_interval_s, settings.probe_timeout_s, settings.probe_failures
                )
            )
            for client in (chain.captions, chain.textgen)
            if settings.probe_interval_s > 0
        ]
        try:
            yield
        finally:
            for task in watchdogs:
                task.cancel()
            await asyncio.gather(*watchdogs, return_exceptions=True)
            app.state.chain = None
            await chain.close()

    async def readiness() -> Readiness:
        chain: Chain | None = getattr(app.state, "chain", None)
        if chain is None:
            return Readiness(False, {"gateway": "starting"})
        caption, textgen, store = await asyncio.gather(
            chain.captions.ready(), chain.textgen.ready(), chain.store.ready()
        )
        checks = {
            "caption-service": caption or "ready",
            "textgen-service": textgen or "ready",
            "story-store": store or f"ready ({chain.store.name})",
        }
        return Readiness(caption is None and textgen is None and store is None, checks)

    app = create_service_app(
        service="gateway",
        title="Talkative gateway",
        version=__version__,
        description="Photo in, story out: captions the photo (caption-service), frames the "
        "caption as a seed for the chosen text model, continues it (textgen-service) and "
        "renders a card to share. Errors are application/problem+json; a dependency that is "
        "down or slow gives 503 with Retry-After.",
        settings=settings,
        readiness=readiness,
        lifespan=lifespan,
        open_paths=OPEN_PATHS,
    )
    app.include_router(router)
    # The limit from the settings, in the document too (each model may allow fewer tokens).
    limit_request_fields(app, max_new_tokens={"maximum": settings.max_new_tokens_limit})
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get(
        "/",
        response_class=HTMLResponse,  # so the document says text/html
        tags=["page"],
        summary="The web page: a photo in, its story and card out",
    )
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def run() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format, "gateway")
    serve_app(create_app(settings), settings)


if __name__ == "__main__":
    run()
