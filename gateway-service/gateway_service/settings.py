"""gateway settings, from GATEWAY_* environment variables or .env."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from talkative_common.images import DEFAULT_DECODE_BUDGET_BYTES, DEFAULT_MAX_IMAGE_BYTES
from talkative_common.settings import ServiceSettings, decode_budget_field, decoded_bytes_field

_URL = r"^https?://[^\s/]+(/[^\s]*)?$"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    port: int = Field(8000, ge=1, le=65535)
    # Photos from phones run to several MB; the caption-service must accept as much.
    max_request_bytes: int = Field(10_000_000, ge=1024)
    max_image_bytes: int = decoded_bytes_field(DEFAULT_MAX_IMAGE_BYTES, "photo")
    decode_budget_bytes: int = decode_budget_field(DEFAULT_DECODE_BUDGET_BYTES, "photo")
    max_image_pixels: int = Field(
        40_000_000, ge=10_000, description="larger images are refused before decoding (bombs)"
    )
    image_max_side: int = Field(
        1024,
        ge=224,
        le=8192,
        description="a photo is decoded no larger than this on its longer side, or "
        "card_photo_max_side if that is larger; that copy, re-encoded as PNG, is what "
        "caption-service gets (not the upload), and the card and the night check use it too",
    )

    caption_url: str = Field("http://127.0.0.1:8001", pattern=_URL, description="caption-service")
    textgen_url: str = Field("http://127.0.0.1:8002", pattern=_URL, description="textgen-service")
    public_url: str | None = Field(
        None,
        pattern=_URL,
        description="base of the card_url returned; default: a path relative to the gateway",
    )

    @field_validator("public_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes `${GATEWAY_PUBLIC_URL:-}`: empty means "not set", i.e. relative
        # card URLs, which are right behind any host name (a localhost default was not).
        return None if value == "" else value

    connect_timeout_s: float = Field(2.0, gt=0, description="TCP connect to a dependency")
    caption_timeout_s: float = Field(30.0, gt=0, description="one caption-service answer")
    textgen_timeout_s: float = Field(60.0, gt=0, description="one textgen-service answer")
    retries: int = Field(
        2, ge=0, le=5, description="extra attempts when a dependency refuses connections or 503s"
    )
    retry_backoff_s: float = Field(
        0.2, gt=0, le=10, description="first wait between attempts; doubles (with jitter) after"
    )
    retry_after_s: int = Field(5, ge=1, le=600, description="Retry-After sent with our 503s")
    max_connections: int = Field(32, ge=1, description="pooled connections per dependency")
    probe_interval_s: float = Field(
        1.0, ge=0, description="how often each dependency's /healthz is probed; 0: never"
    )
    probe_timeout_s: float = Field(
        3.0,
        gt=0,
        description="a probe unanswered after this fails (a busy but live service answers "
        "/healthz within a second or two; a frozen one never does)",
    )
    probe_failures: int = Field(
        3,
        ge=1,
        description="failed probes in a row after which a dependency is down: its calls get "
        "503 at once (a frozen process accepts connections but never answers)",
    )

    models_cache_s: float = Field(
        30.0, ge=0, description="how long the list of text models and their alphabets is reused"
    )
    default_max_new_tokens: int = Field(300, ge=1, le=4096)
    max_new_tokens_limit: int = Field(1000, ge=1, le=4096)

    story_capacity: int = Field(256, ge=1, description="stories kept for their card; oldest out")
    story_ttl_s: float = Field(3600.0, gt=0, description="a story and its card expire after this")
    store_url: str = Field(
        "memory://",
        pattern=r"^(memory://|sqlite://\S+|(rediss?|unix)://\S+)$",
        description="where stories and their cards are kept: memory:// (this process), "
        "sqlite:///path/stories.db (a file the gateways of one host share), or "
        "redis://host:6379/0 (a Redis every replica shares; needs the `redis` package, in "
        "the gateway extra). Bounded by story_capacity and story_ttl_s in each",
    )
    store_key_prefix: str = Field(
        "talkative:gateway:",
        min_length=1,
        description="Redis store: the start of every key, so deployments can share a Redis",
    )
    store_timeout_s: float = Field(
        2.0, gt=0, description="one call to the Redis or SQLite store; slower is a 503"
    )
    card_photo_max_side: int = Field(1080, ge=64, le=4096)
