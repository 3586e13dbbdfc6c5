"""One way to build the stack: caption-service, textgen-service and the gateway from settings.

`Stack` holds what differs from each service's defaults (its settings fields, by name),
and makes either of two things from them:

- in-process services (`talkative tell`, `caption`, `generate`): each service's own
  FastAPI app, its lifespan run (models loaded, verified, warmed up), reached through
  its HTTP API on httpx's in-memory ASGI transport. So a command can only do what the
  API offers, with the same validation and the same errors;
- process specs (`talkative serve`): the same fields as `CAPTION_*`, `TEXTGEN_*` and
  `GATEWAY_*` environment variables for one child process per service.

Either way, the rest of each service's settings comes from its environment variables,
as it would under compose.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from talkative.errors import from_problem
from talkative_common.errors import NotFound
from talkative_common.model_client import ModelRepository

if TYPE_CHECKING:
    from fastapi import FastAPI

    from caption_service.settings import CaptionSettings
    from gateway_service.settings import GatewaySettings
    from textgen_service.settings import TextgenSettings

# Base URLs of the in-process services: names only, nothing listens on them.
CAPTION_URL, TEXTGEN_URL, GATEWAY_URL = "http://caption", "http://textgen", "http://gateway"


@dataclass(frozen=True)
class ModelServer:
    """Reach the models on a model server (TF Serving's protocols) by a version label,
    instead of loading them in each service."""

    backend: str  # "grpc" or "rest"
    host: str = "127.0.0.1"
    grpc_port: int = 8500
    rest_port: int = 8501
    label: str = "stable"
    poll_s: float = 5.0

    def fields(self) -> dict[str, Any]:
        return {
            "model_backend": self.backend,
            "model_server_host": self.host,
            "model_server_grpc_port": self.grpc_port,
            "model_server_rest_port": self.rest_port,
            "model_version_label": self.label,
            "model_version_poll_s": self.poll_s,
        }


@dataclass(frozen=True)
class ServiceSpec:
    """One service as a child process: `python -c "from MODULE import run; run()"`."""

    name: str
    module: str
    url: str
    env: dict[str, str]


def env_of(prefix: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """Settings fields -> the environment variables pydantic-settings reads them from."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, list | tuple | dict):
            text = json.dumps(list(value) if isinstance(value, tuple) else value)
        elif isinstance(value, Path):
            text = str(value.resolve())
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        out[f"{prefix}_{name.upper()}"] = text
    return out


def require_model(models_dir: Path, name: str) -> None:
    """NotFound naming what is there, before any model loads."""
    available = ModelRepository(models_dir).models()
    if name not in available:
        raise NotFound(
            f"no model {name!r} in {models_dir}; available: {', '.join(available) or 'none'}"
        )


async def call(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    """One request to a service; its JSON body, or the domain error its problem stands for."""
    response = await client.request(method, path, **kwargs)
    if response.status_code >= 400:
        raise from_problem(response)
    return response.json() if "json" in response.headers.get("content-type", "") else response


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.ASGITransport]:
    """The app's lifespan (models load), then an in-memory transport to its HTTP API."""
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


@asynccontextmanager
async def _client(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        _running(app) as transport,
        # No timeout: models on a CPU take what they take, and nothing here can hang apart.
        httpx.AsyncClient(transport=transport, base_url=base_url, timeout=None) as client,
    ):
        yield client


@dataclass
class Stack:
    """The three services over one model repository; the fields that differ from defaults."""

    models_dir: Path
    caption_model: str | None = None  # None: caption-service's default, "captioner"
    text_models: Sequence[str] | None = None  # None: every text model in models_dir
    default_text_model: str | None = None
    model_server: ModelServer | None = None  # None: each service loads its models
    log_format: str | None = None
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> more fields

    # --- settings fields, one place for both ways of running ---------------------------------

    def caption_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"model_repository": self.models_dir}
        if self.caption_model is not None:
            fields["model"] = self.caption_model
        return fields | self._common() | self.extra.get("caption", {})

    def textgen_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"model_repository": self.models_dir}
        if self.text_models:
            fields["models"] = list(self.text_models)
        if self.default_text_model is not None:
            fields["default_model"] = self.default_text_model
        return fields | self._common() | self.extra.get("textgen", {})

    def gateway_fields(self, caption_url: str, textgen_url: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"caption_url": caption_url, "textgen_url": textgen_url}
        if self.log_format is not None:
            fields["log_format"] = self.log_format
        return fields | self.extra.get("gateway", {})

    def _common(self) -> dict[str, Any]:
        fields = self.model_server.fields() if self.model_server else {}
        return fields | ({"log_format": self.log_format} if self.log_format else {})

    # --- in-process ------------------------------------------------------------------------

    def caption_settings(self) -> CaptionSettings:
        from caption_service.settings import CaptionSettings

        return CaptionSettings(**self.caption_fields())

    def textgen_settings(self) -> TextgenSettings:
        from textgen_service.settings import TextgenSettings

        return TextgenSettings(**self.textgen_fields())

    def gateway_settings(self) -> GatewaySettings:
        """The in-process gateway's: one process, one user, so stories are kept in memory
        whatever GATEWAY_STORE_URL says, and no watchdog (nothing here freezes apart)."""
        from gateway_service.settings import GatewaySettings

        fields = self.gateway_fields(CAPTION_URL, TEXTGEN_URL)
        return GatewaySettings(**{"store_url": "memory://", "probe_interval_s": 0.0, **fields})

    def caption_app(self) -> FastAPI:
        from caption_service.main import create_app

        return create_app(self.caption_settings())

    def textgen_app(self) -> FastAPI:
        from textgen_service.main import create_app

        return create_app(self.textgen_settings())

    def gateway_app(
        self, caption: httpx.AsyncBaseTransport, textgen: httpx.AsyncBaseTransport
    ) -> FastAPI:
        from gateway_service.main import create_app

        return create_app(self.gateway_settings(), caption, textgen)

    @asynccontextmanager
    async def caption_service(self) -> AsyncIterator[httpx.AsyncClient]:
        """caption-service in this process, and a client of its API."""
        async with _client(self.caption_app(), CAPTION_URL) as client:
            yield client

    @asynccontextmanager
    async def textgen_service(self) -> AsyncIterator[httpx.AsyncClient]:
        """textgen-service in this process, and a client of its API."""
        async with _client(self.textgen_app(), TEXTGEN_URL) as client:
            yield client

    @asynccontextmanager
    async def gateway(self) -> AsyncIterator[httpx.AsyncClient]:
        """The gateway with both services behind it, all three in this process."""
        async with AsyncExitStack() as stack:
            caption = await stack.enter_async_context(_running(self.caption_app()))
            textgen = await stack.enter_async_context(_running(self.textgen_app()))
            app = self.gateway_app(caption, textgen)
            yield await stack.enter_async_context(_client(app, GATEWAY_URL))

    # --- as processes ------------------------------------------------------------------------

    def processes(
        self, *, host: str, port: int, caption_port: int, textgen_port: int
    ) -> list[ServiceSpec]:
        """caption-service and textgen-service on 127.0.0.1, the gateway on `host`."""
        caption_url = f"http://127.0.0.1:{caption_port}"
        textgen_url = f"http://127.0.0.1:{textgen_port}"
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        listen = {"host": "127.0.0.1"}
        return [
            ServiceSpec(
                "caption-service",
                "caption_service.main",
                caption_url,
                env_of("CAPTION", listen | {"port": caption_port} | self.caption_fields()),
            ),
            ServiceSpec(
                "textgen-service",
                "textgen_service.main",
                textgen_url,
                env_of("TEXTGEN", listen | {"port": textgen_port} | self.textgen_fields()),
            ),
            ServiceSpec(
                "gateway",
                "gateway_service.main",
                f"http://{shown}:{port}",
                env_of(
                    "GATEWAY",
                    {"host": host, "port": port} | self.gateway_fields(caption_url, textgen_url),
                ),
            ),
        ]
