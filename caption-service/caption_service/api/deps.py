"""Dependencies the routes receive, injected with Annotated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from caption_service.captioner import CaptionModel
from caption_service.settings import CaptionSettings
from talkative_common.dependencies import app_settings, loaded
from talkative_common.images import DecodeBudget
from talkative_common.model_client import FollowedVersion

CaptionerDep = Annotated[
    FollowedVersion[CaptionModel], Depends(loaded("captioner", "the captioner is still loading"))
]


def get_model(captioner: CaptionerDep) -> CaptionModel:
    """The captioner version serving now, taken once: the whole request uses it."""
    return captioner.current


ModelDep = Annotated[CaptionModel, Depends(get_model)]
SettingsDep = Annotated[CaptionSettings, Depends(app_settings)]
DecodeBudgetDep = Annotated[
    DecodeBudget, Depends(loaded("decode_budget", "caption-service is starting"))
]
