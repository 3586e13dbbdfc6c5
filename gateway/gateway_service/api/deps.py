"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway_service.settings import GatewaySettings
from gateway_service.stories import Chain
from services.errors import Unavailable


def get_chain(request: Request) -> Chain:
    chain: Chain | None = getattr(request.app.state, "chain", None)
    if chain is None:
        raise Unavailable("the gateway is starting")
    return chain


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


ChainDep = Annotated[Chain, Depends(get_chain)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
