"""Settings every service shares; each service subclasses with its own env prefix.

Values come from the environment, then from a `.env` file in the working
directory. Secrets never get defaults and are typed `SecretStr`, so they do not
appear in reprs or logs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from talkative_common import DEFAULT_MODEL_REPOSITORY


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
    max_json_bytes: int = Field(
        64_000,
        ge=1024,
        description="JSON bodies larger than this get 413 (prompts and knobs; photos are "
        "multipart, under max_request_bytes)",
    )
    max_concurrency: int = Field(
        8, ge=1, description="requests served at once; more wait up to queue_timeout_s, then 503"
    )
    queue_timeout_s: float = Field(10.0, gt=0, description="how long a request may wait for a slot")
    max_queue: int = Field(
        16,
        ge=0,
        description="requests that may wait for a slot; with the queue full, 503 at once",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="the whole request body must arrive within this many seconds, else 408; "
        "it is read before the request takes a slot, so slow uploads hold none",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a connection must send a request's whole header block within this many "
        "seconds of connecting (or of its previous answer), else it is closed",
    )
    max_uploads_per_client: int = Field(
        16,
        ge=1,
        description="request bodies one client address may be sending at once; more get 429, "
        "so one address cannot hold every connection with slow uploads. Keep it at least the "
        "calling service's max_concurrency on internal services (the gateway is one address)",
    )

    # Public-deployment controls: all off by default (the laptop), see docs/security.md.
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each API key accepted in the X-API-Key header, "
        "comma-separated; `talkative api-key` makes a key and its hash. Empty: no key needed",
    )
    rate_limit: str | None = Field(
        None,
        description="per-client rate in `limits` notation, e.g. '20/minute;200/hour': per API "
        "key, or per client address when no keys are set; over it, 429 with Retry-After. "
        "Empty: no limit",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="where rate counts live: memory:// (this process) or redis://host:6379 "
        "(replicas share them; needs the `redis` package)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins whose pages may call the API from a browser, comma-separated "
        "(e.g. https://talkative.example); empty: no cross-site use",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve /metrics on this port (on `host`) instead of the API port, so the "
        "proxy that publishes the API does not publish the metrics",
    )

    @field_validator("api_key_hashes", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_key_hashes")
    @classmethod
    def _sha256_hex(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(
                    "each API key hash is 64 lowercase hex digits (SHA-256); "
                    "`talkative api-key` prints one"
                )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate such as '20/minute;200/hour'") from exc
        return value


class ModelServiceSettings(ServiceSettings):
    """Settings of a service that calls models (caption-service, textgen-service)."""

    model_repository: Path = Field(
        DEFAULT_MODEL_REPOSITORY,
        description="model repository laid out as <name>/<version>/ (the one TF Serving mounts)",
    )
    model_backend: Literal["inprocess", "grpc", "rest"] = Field(
        "inprocess",
        description="how models are run: inprocess loads the SavedModels here; grpc and rest "
        "call TensorFlow Serving (PredictionService on model_server_grpc_port, or its REST API "
        "on model_server_rest_port)",
    )
    model_timeout_s: float = Field(
        60.0, gt=0, description="deadline of one model call, retries included"
    )
    model_server_host: str = Field(
        "127.0.0.1", description="TensorFlow Serving host (grpc and rest backends)"
    )
    model_server_grpc_port: int = Field(
        8500, ge=1, le=65535, description="TensorFlow Serving --port (gRPC)"
    )
    model_server_rest_port: int = Field(
        8501, ge=1, le=65535, description="TensorFlow Serving --rest_api_port (HTTP/REST)"
    )
    model_server_grpc_target: str | None = Field(
        None,
        description="gRPC target naming one or several model servers, overriding "
        "model_server_host and model_server_grpc_port: `ipv4:10.0.0.1:8500,10.0.0.2:8500`, or "
        "`dns:///tfserving:8500` for a name resolving to several; calls are spread round-robin",
    )
    model_version: int | None = Field(
        None,
        ge=1,
        description="pin this model version when a call names none; default: the newest served",
    )
    model_version_label: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="address models by this TF Serving version label (e.g. stable, canary) when "
        "a call names no version; grpc and rest backends only",
    )
    model_version_poll_s: float = Field(
        5.0,
        gt=0,
        description="how often to ask the model server which version the label (or, with no "
        "label, the newest served) points at; when it moves, the new version's card and "
        "vocabulary are loaded, checked and warmed up, then swapped in without a restart. "
        "grpc and rest backends with no pinned model_version only",
    )
    model_retries: int = Field(
        2, ge=0, le=10, description="extra attempts when the model server is UNAVAILABLE"
    )
    model_retry_backoff_s: float = Field(
        0.1, gt=0, le=10, description="first wait between attempts; doubles (with jitter) after"
    )
    model_keepalive_s: float = Field(
        30.0, gt=0, description="gRPC keepalive ping interval while calls are in flight"
    )
    model_reconnect_backoff_max_s: float = Field(
        2.0,
        gt=0,
        description="longest gRPC wait between reconnection attempts to a model server that is "
        "down: bounds how soon a returning server is noticed",
    )

    @model_validator(mode="after")
    def _one_version_selector(self) -> ModelServiceSettings:
        if self.model_version is not None and self.model_version_label is not None:
            raise ValueError("set model_version or model_version_label, not both")
        if self.model_version_label is not None and self.model_backend == "inprocess":
            raise ValueError(
                "model_version_label needs the grpc or rest backend: labels live in "
                "TF Serving's models.config"
            )
        return self


def decoded_bytes_field(default: int, noun: str) -> Any:
    """The limit on one decoded `noun` (image, photo) of the services that decode them."""
    return Field(
        default,
        ge=10_000,
        description=f"largest {noun} accepted once decoded, in bytes: width x height x what "
        "its mode takes a pixel (1 for grey or palette, 2 for 16-bit grey, 4 for colour, RGB "
        "included, as Pillow holds it); a JPEG counts at the reduced scale it is decoded to. "
        "Larger gets 422",
    )


def decode_budget_field(default: int, noun: str) -> Any:
    """The decoded bytes one process holds at once (talkative_common.images.DecodeBudget)."""
    article = "an" if noun[0] in "aeiou" else "a"
    return Field(
        default,
        ge=10_000,
        description=f"decoded bytes of all the {noun}s this process decodes at once; {article} "
        f"{noun} that does not fit waits for the others (at most queue_timeout_s, then 503)",
    )
