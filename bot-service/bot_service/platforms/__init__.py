"""Platform adapters behind one interface; create_platform() picks one from settings."""

from __future__ import annotations

import logging

from bot_service.platforms.base import Platform
from bot_service.settings import DEPRECATED_PLATFORMS, BotSettings

log = logging.getLogger("bot_service")
_warned: set[str] = set()

__all__ = ["Platform", "create_platform"]


def create_platform(settings: BotSettings) -> Platform:
    # Imported lazily: each adapter pulls in its own client library.
    if settings.platform == "x":
        from bot_service.platforms.x import XPlatform

        return XPlatform(settings)
    if settings.platform in ("twitter-legacy", "twitter"):
        if settings.platform in DEPRECATED_PLATFORMS:
            _deprecated(settings.platform)
        from bot_service.platforms.twitter import TwitterPlatform

        return TwitterPlatform(settings)
    if settings.platform == "mastodon":
        from bot_service.platforms.mastodon import MastodonPlatform

        return MastodonPlatform(settings)
    if settings.platform == "bluesky":
        from bot_service.platforms.bluesky import BlueskyPlatform

        return BlueskyPlatform(settings)
    from bot_service.platforms.folder import FolderPlatform

    return FolderPlatform(settings)


def _deprecated(name: str) -> None:
    """An old platform name still works, with a warning (once per process)."""
    if name not in _warned:
        _warned.add(name)
        log.warning(
            "BOT_PLATFORM=%s is deprecated: it means %s (python-twitter, X API v1.1). Use "
            "BOT_PLATFORM=%s to keep it, or x for the X API v2 (docs/bot.md)",
            name,
            DEPRECATED_PLATFORMS[name],
            DEPRECATED_PLATFORMS[name],
        )
