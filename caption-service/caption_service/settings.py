"""caption-service settings, from CAPTION_* environment variables or .env."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from talkative_common.images import (
    DEFAULT_DECODE_BUDGET_BYTES,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
)
from talkative_common.settings import ModelServiceSettings, decode_budget_field, decoded_bytes_field


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
    max_image_bytes: int = decoded_bytes_field(DEFAULT_MAX_IMAGE_BYTES, "image")
    decode_budget_bytes: int = decode_budget_field(DEFAULT_DECODE_BUDGET_BYTES, "image")
    image_max_side: int = Field(
        1080,
        ge=224,
        le=8192,
        description="an image is decoded no larger than this on its longer side before the "
        "captioner gets it (its graph centre-crops and resizes to 224 x 224); 1080 is what the "
        "gateway sends with its defaults, so its photos are not resampled twice",
    )
