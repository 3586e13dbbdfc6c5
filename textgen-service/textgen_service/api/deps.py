"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.errors import Unavailable
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings


def get_registry(request: Request) -> TextModelRegistry:
    registry: TextModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        raise Unavailable("models are still loading")
    return registry


def get_settings(request: Request) -> TextgenSettings:
    settings: TextgenSettings = request.app.state.settings
    return settings


RegistryDep = Annotated[TextModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[TextgenSettings, Depends(get_settings)]
