"""The scaffolding of the two model services (caption-service, textgen-service): one
factory, so loading, warm-up, readiness and shutdown work alike in both. In a module of its
own so the gateway and the bot, which load no model, do not import the model clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from fastapi import APIRouter, FastAPI

from talkative_common.app import create_service_app
from talkative_common.model_client import ModelClient, ModelRepository, create_model_client
from talkative_common.observability import Readiness
from talkative_common.settings import ModelServiceSettings


class LoadedModels(Protocol):
    """What a model service's lifespan loads: its models, following the served versions
    until closed."""

    async def close(self) -> None: ...


M = TypeVar("M", bound=LoadedModels)


@dataclass(frozen=True)
class ModelLoader(Generic[M]):
    """How a model service gets its models: `load` builds them (verified against their
    contract and warmed up) from the model client and the repository, onto
    `app.state.<state>`; `ready` is their /readyz detail, `loading` the detail before
    (default: `{state: "loading"}`)."""

    state: str
    load: Callable[[ModelClient, ModelRepository], Awaitable[M]]
    ready: Callable[[M], dict[str, str]]
    loading: dict[str, str] | None = None


def create_model_service(
    settings: ModelServiceSettings,
    client: ModelClient | None,
    router: APIRouter,
    models: ModelLoader[M],
    *,
    service: str,
    version: str,
    description: str,
) -> FastAPI:
    """A model service (caption, textgen): create_service_app's edges, with `router`, and a
    lifespan that creates the model client (or takes `client`, the tests' and `talkative
    tell`'s), loads the models before any traffic, and closes them, then the client, at
    shutdown. /readyz is 503 until they are loaded."""
    state = models.state

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_client = client or create_model_client(settings)
        # Load, verify against the contract and warm up before accepting traffic; from
        # then on the models follow the version the model server serves.
        loaded = await models.load(model_client, ModelRepository(settings.model_repository))
        setattr(app.state, state, loaded)
        try:
            yield
        finally:
            setattr(app.state, state, None)
            await loaded.close()  # no switch may start on a closing client
            await model_client.close()

    async def readiness() -> Readiness:
        loaded: M | None = getattr(app.state, state, None)
        if loaded is None:
            return Readiness(False, models.loading or {state: "loading"})
        return Readiness(True, models.ready(loaded))

    app = create_service_app(
        service=service,
        title=f"Talkative {service}-service",
        version=version,
        description=f"{description} Errors are application/problem+json.",
        settings=settings,
        readiness=readiness,
        lifespan=lifespan,
    )
    app.include_router(router)
    return app
