"""One way to assemble a service's FastAPI app, so every service behaves the same at the edges."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from talkative_common.access import API_KEY_HEADER, ClientAccess, OriginCheck
from talkative_common.connections import header_deadline_protocol
from talkative_common.headers import SecurityHeaders
from talkative_common.logging import RequestLog, configure_logging
from talkative_common.observability import ConcurrencyLimit, ReadinessCheck, install_observability
from talkative_common.openapi import install_openapi
from talkative_common.problems import install_problem_handlers
from talkative_common.settings import ServiceSettings
from talkative_common.validation import BodySizeLimit, ReadBodyFirst

Lifespan = (
    Callable[[FastAPI], AbstractAsyncContextManager[None]]
    | Callable[[FastAPI], AsyncIterator[None]]
)


def serve_app(app: FastAPI, settings: ServiceSettings) -> None:
    """Run a service's app until it is stopped: the one uvicorn set-up every service uses."""
    import uvicorn

    from talkative_common.memory import tune_malloc

    tune_malloc()  # big freed buffers (decoded photos) go back to the system: see its module
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # talkative_common.logging configured the handlers already
        server_header=False,  # do not announce the server software
        http=header_deadline_protocol(settings.header_timeout_s),
    )


S = TypeVar("S", bound=ServiceSettings)


def run_service(name: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    """A service's console script: its logging, then its app until it is stopped."""
    configure_logging(settings.log_level, settings.log_format, name)
    serve_app(create_app(settings), settings)


def _with_metrics_port(lifespan: Lifespan | None, settings: ServiceSettings) -> Lifespan:
    """The service's lifespan, plus the Prometheus endpoint on its own port around it."""

    @asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[None]:
        from prometheus_client import start_http_server

        assert settings.metrics_port is not None
        server, thread = start_http_server(
            settings.metrics_port, addr=settings.host, registry=app.state.metrics.registry
        )
        try:
            if lifespan is None:
                yield
            else:
                inner = lifespan(app)
                if not hasattr(inner, "__aenter__"):  # an async generator function
                    inner = asynccontextmanager(lifespan)(app)  # type: ignore[arg-type]
                async with inner:  # type: ignore[union-attr]
                    yield
        finally:
            server.shutdown()
            thread.join()

    return wrapped


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str,
    settings: ServiceSettings,
    readiness: ReadinessCheck,
    lifespan: Lifespan | None = None,
    open_paths: Iterable[str] = (),
) -> FastAPI:
    """A service's app with the shared edges; `open_paths` (regular expressions) are the
    GET paths that need no API key when keys are set (a web page, say)."""
    if settings.metrics_port is not None:
        lifespan = _with_metrics_port(lifespan, settings)
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.settings = settings
    install_problem_handlers(app)
    install_openapi(app, settings, open_paths=open_paths)  # the document, true to the edges
    metrics = install_observability(
        app, service, readiness, metrics_route=settings.metrics_port is None
    )
    # Added last = outermost: security headers, CORS, logging, the size check, keys and
    # rate limits, the whole body read (so a slow upload holds no slot), then the
    # concurrency bound.
    app.add_middleware(
        ConcurrencyLimit,
        limit=settings.max_concurrency,
        wait_s=settings.queue_timeout_s,
        max_queue=settings.max_queue,
        metrics=metrics,
    )
    app.add_middleware(
        ReadBodyFirst,
        timeout_s=settings.body_timeout_s,
        max_per_client=settings.max_uploads_per_client,
    )
    if settings.api_key_hashes or settings.rate_limit:
        app.add_middleware(
            ClientAccess,
            key_hashes=settings.api_key_hashes,
            rate_limit=settings.rate_limit,
            storage_uri=settings.rate_limit_storage,
            open_paths=open_paths,
        )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        max_json_bytes=settings.max_json_bytes,
        openapi=app.openapi,
    )
    app.add_middleware(RequestLog)
    if settings.cors_origins:
        app.add_middleware(OriginCheck, allowed=settings.cors_origins)
        # Starlette's own CORS middleware: preflights answered here, never by a route.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
            expose_headers=["Retry-After", "Server-Timing"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, refusals included
    return app
