"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from caption_service.captioner import CaptionModel
from caption_service.settings import CaptionSettings
from services.errors import Unavailable
from services.images import DecodeBudget
from services.model_client import FollowedVersion


def get_model(request: Request) -> CaptionModel:
    """The captioner version serving now, taken once: the whole request uses it."""
    captioner: FollowedVersion[CaptionModel] | None = getattr(request.app.state, "captioner", None)
    if captioner is None:
        raise Unavailable("the captioner is still loading")
    return captioner.current


def get_settings(request: Request) -> CaptionSettings:
    settings: CaptionSettings = request.app.state.settings
    return settings


def get_decode_budget(request: Request) -> DecodeBudget:
    budget: DecodeBudget = request.app.state.decode_budget
    return budget


ModelDep = Annotated[CaptionModel, Depends(get_model)]
SettingsDep = Annotated[CaptionSettings, Depends(get_settings)]
DecodeBudgetDep = Annotated[DecodeBudget, Depends(get_decode_budget)]
