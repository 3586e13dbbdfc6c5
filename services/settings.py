"""Settings every service shares; each service subclasses with its own env prefix.

Values come from the environment, then from a `.env` file in the working
directory. Secrets never get defaults and are typed `SecretStr`, so they do not
appear in reprs or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services import DEFAULT_MODEL_REPOSITORY


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = Field("127.0.0.1", description="interface to listen on")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field(
        "json", description="json for machines, text for people"
    )
    max_request_bytes: int = Field(
        1_000_000, ge=1024, description="bodies larger than this get 413"
    )
    max_concurrency: int = Field(
        8, ge=1, description="requests served at once; more wait up to queue_timeout_s, then 503"
    )
    queue_timeout_s: float = Field(10.0, gt=0, description="how long a request may wait for a slot")


class ModelServiceSettings(ServiceSettings):
    """Settings of a service that calls models (caption-service, textgen-service)."""

    model_repository: Path = Field(
        DEFAULT_MODEL_REPOSITORY,
        description="model repository laid out as <name>/<version>/ (the one TF Serving mounts)",
    )
    model_backend: Literal["inprocess"] = Field(
        "inprocess", description="how models are run: inprocess loads the SavedModels here"
    )
    model_timeout_s: float = Field(60.0, gt=0, description="deadline of one model call")
