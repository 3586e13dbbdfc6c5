"""textgen-service settings, from TEXTGEN_* environment variables or .env."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from talkative_common.settings import ModelServiceSettings


class TextgenSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TEXTGEN_", env_file=".env", extra="ignore")

    port: int = Field(8002, ge=1, le=65535)
    models: list[str] | None = Field(
        None, description="models to serve (JSON list); default: every text model in the repository"
    )
    default_model: str = "char_lstm_en"
    max_prompt_chars: int = Field(2000, ge=1, le=100_000)
    max_new_tokens_limit: int = Field(2000, ge=1, le=4096)
    max_request_bytes: int = Field(64_000, ge=1024)
