"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from talkative_common.dependencies import app_settings, loaded
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings

RegistryDep = Annotated[TextModelRegistry, Depends(loaded("registry", "models are still loading"))]
SettingsDep = Annotated[TextgenSettings, Depends(app_settings)]
