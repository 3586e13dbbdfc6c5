"""bot-service settings, from BOT_* environment variables, .env, or secret files.

Secrets are SecretStr, so they never show in a repr or a log line. Each may also come from
a file named after its variable in lowercase (`bot_mastodon_access_token`, ...) in
/run/secrets, where compose mounts its `secrets:` (docker-compose.yml): values that are
not environment variables do not show in `docker inspect` or in a child's environment.
Order of precedence (pydantic-settings): arguments, environment, .env, then the files.
An empty value, from a file or a variable, means "not set".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from talkative_common.settings import ServiceSettings

Platform = Literal["folder", "x", "twitter-legacy", "twitter", "mastodon", "bluesky"]
# Accepted for old configurations, with a warning once (platforms/__init__.py); not listed.
DEPRECATED_PLATFORMS = {"twitter": "twitter-legacy"}
SECRETS_DIR = Path("/run/secrets")  # where compose mounts file secrets
SECRET_FIELDS = (
    "gateway_api_key",
    "twitter_consumer_key",
    "twitter_consumer_secret",
    "twitter_access_token",
    "twitter_access_token_secret",
    "x_api_key",
    "x_api_secret",
    "x_access_token",
    "x_access_token_secret",
    "mastodon_access_token",
    "bluesky_app_password",
)


class BotSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_", env_file=".env", extra="ignore", secrets_dir=SECRETS_DIR
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The default sources; the secret files only where their folder exists (outside a
        container there is no /run/secrets, and pydantic-settings would warn at every start)."""
        folder: Any = getattr(file_secret_settings, "secrets_dir", None)
        if isinstance(folder, (str, os.PathLike)) and not Path(folder).is_dir():
            return init_settings, env_settings, dotenv_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator(*SECRET_FIELDS, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`make secrets` creates every file empty: only the ones filled in are set."""
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        return value

    port: int = Field(8004, ge=1, le=65535, description="port of /healthz, /readyz, /metrics")
    platform: Platform = Field("folder", description="where mentions come from and replies go")
    state_path: Path = Field(Path("var/bot/state.sqlite3"), description="SQLite state (WAL)")

    # Replicas: one instance posts, the others stand by (bot_service/lease.py, docs/bot.md).
    lease_url: str | None = Field(
        None,
        pattern=r"^(sqlite://\S*|(rediss?|unix)://\S+)$",
        description="where the lease that picks the active instance lives: unset, a table "
        "in the SQLite state file (instances on one host sharing state_path); "
        "redis://host:6379/0, a Redis that instances on several hosts share (needs the "
        "`redis` package, in the bot extra)",
    )
    lease_ttl_s: float = Field(
        90.0,
        ge=1,
        le=3600,
        description="the lease's time to live: the holder renews it every third of this and "
        "starts no post two thirds after its last renewal; when it dies, another instance "
        "takes over within about this long. Keep platform_timeout_s at most a third of it",
    )
    lease_name: str | None = Field(
        None,
        min_length=1,
        description="the lease's name (its Redis key); instances answering for the same "
        "account must share it. Default: talkative:bot:<platform>:lease",
    )

    # The gateway's public API.
    gateway_url: str = Field("http://127.0.0.1:8000", description="base URL of the gateway")
    gateway_timeout_s: float = Field(120.0, gt=0, description="deadline of one gateway call")
    gateway_api_key: SecretStr | None = Field(
        None, description="sent as X-API-Key when the gateway requires keys"
    )
    story_model: str | None = Field(None, description="text model; default: the gateway's")
    story_max_new_tokens: int = Field(300, ge=1, le=2000)
    story_temperature: float = Field(0.7, gt=0, le=2.0)
    story_style: str | None = Field(None, description="card style passed to the gateway")

    # Loop, retries, dead letters.
    poll_interval_s: float = Field(60.0, gt=0, description="pause between polls")
    max_per_poll: int = Field(10, ge=1, description="mentions handled per poll at most")
    max_attempts: int = Field(5, ge=1, description="failures of one mention before dead letter")
    backoff_base_s: float = Field(5.0, gt=0, description="first retry delay; doubles each time")
    backoff_max_s: float = Field(3600.0, gt=0, description="longest retry delay")
    outage_backoff_max_s: float = Field(300.0, gt=0, description="longest pause when down")
    max_rate_limit_wait_s: float = Field(
        900.0, ge=0, description="--once waits for a rate-limit reset at most this long"
    )

    # Politeness and safety.
    user_cooldown_s: float = Field(300.0, ge=0, description="one reply per author per this")
    help_reply: str = Field(
        "Send me a photo and I will write you a story about it.",
        description="answer to a mention without an image; empty = ignore such mentions",
    )
    error_reply: str = Field(
        "Sorry, I could not read that image. Please try a JPEG or PNG photo.",
        description="answer to a mention whose image is broken or not allowed",
    )
    blocked_reply: str = Field(
        "Sorry, the story I wrote for this picture is not fit to share. Try another photo!",
        description="answer when every story attempt tripped the word filter",
    )
    word_filter: list[str] = Field(
        default_factory=list, description="JSON list of words never posted (case-insensitive)"
    )
    story_retries_on_filter: int = Field(2, ge=0, description="new seeds tried after a block")
    max_media_bytes: int = Field(5_000_000, ge=1024, description="largest image downloaded")
    media_timeout_s: float = Field(20.0, gt=0, description="whole-download deadline")
    media_types: list[str] = Field(
        default_factory=lambda: ["image/jpeg", "image/png", "image/webp", "image/gif"],
        description="content types accepted",
    )
    media_hosts: list[str] | None = Field(
        None, description="hosts media may come from; default: the platform's own"
    )
    reply_limit: int | None = Field(None, ge=20, description="default: 280 on X, 500 on Mastodon")
    language: Literal["en", "fr"] = "en"

    # folder platform.
    inbox: Path = Field(Path("var/bot/inbox"), description="images to answer (folder platform)")
    outbox: Path = Field(Path("var/bot/outbox"), description="replies (folder platform)")

    # x platform (X API v2 through the xdk SDK, OAuth 1.0a user context; docs/bot.md, "X").
    x_api_key: SecretStr | None = Field(None, description="the app's API Key (consumer key)")
    x_api_secret: SecretStr | None = Field(None, description="the app's API Key Secret")
    x_access_token: SecretStr | None = Field(None, description="the bot account's Access Token")
    x_access_token_secret: SecretStr | None = Field(None, description="its Access Token Secret")
    x_base_url: str = Field("https://api.x.com", description="the X API v2 host")
    x_media_processing_max_s: float = Field(
        60.0, gt=0, description="longest wait for X to process an uploaded card"
    )

    # twitter-legacy platform (python-twitter, API v1.1 endpoints; `twitter` is its old name).
    twitter_consumer_key: SecretStr | None = None
    twitter_consumer_secret: SecretStr | None = None
    twitter_access_token: SecretStr | None = None
    twitter_access_token_secret: SecretStr | None = None
    twitter_base_url: str = "https://api.twitter.com/1.1"
    twitter_upload_url: str = "https://upload.twitter.com/1.1"

    # mastodon platform (Mastodon.py).
    mastodon_base_url: str = Field("https://mastodon.social", description="the instance")
    mastodon_access_token: SecretStr | None = None
    mastodon_visibility: Literal["public", "unlisted", "private", "direct"] = "unlisted"

    # bluesky platform (the atproto SDK; docs/bot.md, "Bluesky").
    bluesky_service_url: str = Field(
        "https://bsky.social", description="the account's PDS (or the bsky.social entryway)"
    )
    bluesky_handle: str | None = Field(
        None, description="the bot's handle, e.g. talkative.bsky.social"
    )
    bluesky_app_password: SecretStr | None = Field(
        None, description="an app password (Settings > Privacy and security > App passwords)"
    )
    bluesky_session_path: Path | None = Field(
        None,
        description="where the session (access and refresh tokens) is kept between runs, mode "
        "0600, so a restart does not log in again; default: bluesky-session next to state_path",
    )
    bluesky_media_source: Literal["cdn", "pds"] = Field(
        "cdn",
        description="where a mention's images are fetched: the AppView's CDN (bluesky_cdn_url), "
        "or the author's own PDS (com.atproto.sync.getBlob, its host found through the DID)",
    )
    bluesky_cdn_url: str = Field("https://cdn.bsky.app", description="the image CDN")
    bluesky_plc_url: str = Field(
        "https://plc.directory", description="the did:plc directory (media source pds)"
    )

    platform_timeout_s: float = Field(30.0, gt=0, description="deadline of one platform call")
