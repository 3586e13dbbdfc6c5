"""Platform adapters behind one interface; create_platform() picks one from settings."""

from __future__ import annotations

from bot_service.platforms.base import (
    MediaRef,
    MediaRejected,
    Mention,
    MentionBatch,
    Platform,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    Reply,
)
from bot_service.settings import BotSettings

__all__ = [
    "MediaRef",
    "MediaRejected",
    "Mention",
    "MentionBatch",
    "Platform",
    "PlatformError",
    "PlatformUnavailable",
    "RateLimited",
    "Reply",
    "create_platform",
]


def create_platform(settings: BotSettings) -> Platform:
    # Imported lazily: each adapter pulls in its own client library.
    if settings.platform == "twitter":
        from bot_service.platforms.twitter import TwitterPlatform

        return TwitterPlatform(settings)
    if settings.platform == "mastodon":
        from bot_service.platforms.mastodon import MastodonPlatform

        return MastodonPlatform(settings)
    from bot_service.platforms.folder import FolderPlatform

    return FolderPlatform(settings)
