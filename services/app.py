"""One way to assemble a service's FastAPI app, so every service behaves the same at the edges."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from services.headers import SecurityHeaders
from services.logging import RequestLog
from services.observability import ConcurrencyLimit, ReadinessCheck, install_observability
from services.problems import install_problem_handlers
from services.settings import ServiceSettings
from services.validation import BodySizeLimit, ReadBodyFirst

Lifespan = (
    Callable[[FastAPI], AbstractAsyncContextManager[None]]
    | Callable[[FastAPI], AsyncIterator[None]]
)


def serve_app(app: FastAPI, settings: ServiceSettings) -> None:
    """Run a service's app until it is stopped: the one uvicorn set-up every service uses."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # services.logging configured the handlers already
        server_header=False,  # do not announce the server software
    )


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str,
    settings: ServiceSettings,
    readiness: ReadinessCheck,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.settings = settings
    install_problem_handlers(app)
    metrics = install_observability(app, service, readiness)
    # Added last = outermost: logging, the size check, the whole body read (so a slow
    # upload holds no slot), then the concurrency bound.
    app.add_middleware(
        ConcurrencyLimit,
        limit=settings.max_concurrency,
        wait_s=settings.queue_timeout_s,
        max_queue=settings.max_queue,
        metrics=metrics,
    )
    app.add_middleware(ReadBodyFirst, timeout_s=settings.body_timeout_s)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        max_json_bytes=settings.max_json_bytes,
    )
    app.add_middleware(RequestLog)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, refusals included
    return app
