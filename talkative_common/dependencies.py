"""Route dependencies every service shares: what its lifespan put on `app.state`, and its
settings. Each service's api/deps.py names them with its own types:

    RegistryDep = Annotated[TextModelRegistry, Depends(loaded("registry", "models are ..."))]
    SettingsDep = Annotated[TextgenSettings, Depends(app_settings)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from talkative_common.errors import Unavailable
from talkative_common.settings import ServiceSettings


def loaded(name: str, loading: str) -> Callable[[Request], Any]:
    """A dependency: `app.state.<name>`, or 503 (`loading`) while the lifespan has not set
    it (or has cleared it at shutdown)."""

    def dependency(request: Request) -> Any:
        value = getattr(request.app.state, name, None)
        if value is None:
            raise Unavailable(loading)
        return value

    dependency.__name__ = f"get_{name}"  # what FastAPI and tracebacks show
    return dependency


def app_settings(request: Request) -> ServiceSettings:
    """The settings the app was created with (talkative_common.app.create_service_app)."""
    settings: ServiceSettings = request.app.state.settings
    return settings
