"""The one small interface every platform adapter implements, and the errors it may raise."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MediaRef:
    """An image attached to a mention: where to fetch it and what the platform says it is."""

    url: str
    kind: str = "image"
    description: str | None = None


@dataclass(frozen=True)
class Mention:
    id: str
    author_id: str
    author_handle: str
    text: str
    media: tuple[MediaRef, ...] = ()
    own: bool = False  # posted by the bot itself: never answered


@dataclass(frozen=True)
class Reply:
    text: str
    image: bytes | None = None
    image_type: str = "image/png"
    alt_text: str = ""
    key: str = ""  # stable per mention: idempotency key where the platform supports one
    # Raises when this instance may no longer post (it lost the lease to another replica).
    guard: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def check(self) -> None:
        """Called by the adapters right before the call that publishes the reply (after any
        media upload, which may take a while): a replica that lost the lease stops there."""
        if self.guard is not None:
            self.guard()


@dataclass
class MentionBatch:
    mentions: list[Mention]
    cursor: str | None  # where the next fetch starts; None keeps the old one
    extra: dict[str, str] = field(default_factory=dict)


def require_settings(settings: Any, platform: str, *fields: str, hint: str = "") -> None:
    """Refuse to start a platform whose credentials are missing, naming their variables
    (BOT_ + the field), so the operator knows what to set: never a failed call later."""
    if all(getattr(settings, f) for f in fields):
        return
    names = [f"BOT_{f.upper()}" for f in fields]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    raise ValueError(f"the {platform} platform needs {listed}" + (f" ({hint})" if hint else ""))


class PlatformError(Exception):
    """The platform refused this request for good (bad request, forbidden, gone)."""


class PlatformUnavailable(PlatformError):
    """Network trouble or a 5xx: the platform, not the mention, is at fault; try later."""


class RateLimited(PlatformError):
    """429: nothing more may be sent before `reset_at` (epoch seconds)."""

    def __init__(self, reset_at: float, detail: str = "rate limited") -> None:
        super().__init__(f"{detail}; reset at {reset_at:.0f}")
        self.reset_at = reset_at


class MediaRejected(Exception):
    """The image cannot be used (wrong host or type, too big, too slow, corrupt): tell the user."""


class Platform(abc.ABC):
    name: str
    text_limit: int
    alt_text_limit: int

    @abc.abstractmethod
    def fetch_mentions(self, cursor: str | None, limit: int) -> MentionBatch:
        """Mentions newer than `cursor`, oldest first."""

    @abc.abstractmethod
    def download(self, media: MediaRef) -> tuple[bytes, str]:
        """The media bytes and their content type; MediaRejected when unusable."""

    @abc.abstractmethod
    def find_reply(self, mention: Mention) -> str | None:
        """The id of the bot's own reply to `mention` if one exists (after a crash)."""

    @abc.abstractmethod
    def post_reply(self, mention: Mention, reply: Reply) -> str:
        """Post `reply` under `mention`; returns the new post's id."""

    def text_length(self, text: str) -> int:
        """Length as the platform counts it (X weighs some characters double)."""
        return len(text)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
