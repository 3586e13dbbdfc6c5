"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from gateway_service.settings import GatewaySettings
from gateway_service.stories import Chain
from talkative_common.dependencies import app_settings, loaded

ChainDep = Annotated[Chain, Depends(loaded("chain", "the gateway is starting"))]
SettingsDep = Annotated[GatewaySettings, Depends(app_settings)]
