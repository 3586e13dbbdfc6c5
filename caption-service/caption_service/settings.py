"""caption-service settings, from CAPTION_* environment variables or .env."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.images import DEFAULT_MAX_PIXELS
from services.settings import ModelServiceSettings


class CaptionSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CAPTION_", env_file=".env", extra="ignore")

    port: int = Field(8001, ge=1, le=65535)
    model: str = Field("captioner", description="the captioner in the model repository")
    max_request_bytes: int = Field(
        10_000_000, ge=1024, description="largest upload accepted (bytes); larger gets 413"
    )
    max_image_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="largest image accepted (width x height), checked before decoding",
    )
