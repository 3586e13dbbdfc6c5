"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from caption_service.captioner import CaptionModel
from caption_service.settings import CaptionSettings
from services.problems import Unavailable


def get_model(request: Request) -> CaptionModel:
    model: CaptionModel | None = getattr(request.app.state, "model", None)
    if model is None:
        raise Unavailable("the captioner is still loading")
    return model


def get_settings(request: Request) -> CaptionSettings:
    settings: CaptionSettings = request.app.state.settings
    return settings


ModelDep = Annotated[CaptionModel, Depends(get_model)]
SettingsDep = Annotated[CaptionSettings, Depends(get_settings)]
