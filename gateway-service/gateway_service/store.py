"""Where stories are kept, so their cards can be fetched after: bounded and expiring.

Three backends, chosen by `GATEWAY_STORE_URL` (`open_store`):
- `memory://` (the default): this process only, for the laptop and `talkative tell`;
- `sqlite:///path/stories.db`: a file that the gateway processes of one host share
  (gateway_service/sqlite_store.py);
- `redis://host:6379/0`: a Redis that every replica shares (gateway_service/redis_store.py).

Each keeps at most `capacity` stories (the oldest go first) and none older than `ttl_s`.
A card, rendered once from the stored photo, is stored beside its story and expires with it.
"""

from __future__ import annotations

import abc
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cachetools import Cache, TLRUCache

if TYPE_CHECKING:
    from gateway_service.settings import GatewaySettings


@dataclass
class StoredStory:
    id: str
    photo_jpeg: bytes  # the photo downscaled for the card, not the upload
    caption: str
    prompt: str  # the text the model read (the caption framed, fitted by textgen)
    story: str
    model: str
    language: str
    created: float  # epoch seconds (time.time()), so that processes agree on it
    card_png: bytes | None = None  # rendered on the first GET, then stored and reused
    alt_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def meta_json(self) -> str:
        """Everything but the photo and the card, for the stores that serialise."""
        return json.dumps(
            {
                "caption": self.caption,
                "prompt": self.prompt,
                "story": self.story,
                "model": self.model,
                "language": self.language,
                "created": self.created,
                "alt_text": self.alt_text,
                "extra": self.extra,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_parts(
        cls, story_id: str, meta: str | bytes, photo: bytes, card: bytes | None
    ) -> StoredStory:
        fields = json.loads(meta)
        if "seed" in fields:  # kept before the prompt text was called `prompt`
            fields["prompt"] = fields.pop("seed")
        return cls(id=story_id, photo_jpeg=photo, card_png=card, **fields)


class StoryStore(abc.ABC):
    """At most `capacity` stories, none older than `ttl_s` (from `StoredStory.created`,
    epoch seconds); the oldest go first. Async, so a network store does not block."""

    name = "store"

    def __init__(self, capacity: int, ttl_s: float) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(12)  # 16 URL-safe characters, not guessable

    @abc.abstractmethod
    async def put(self, story: StoredStory) -> None:
        """Keep `story` (its card too, if it has one), evicting the oldest over capacity."""

    @abc.abstractmethod
    async def get(self, story_id: str) -> StoredStory | None:
        """The story, or None when it never existed, expired or was evicted."""

    @abc.abstractmethod
    async def put_card(self, story_id: str, png: bytes) -> None:
        """Keep the rendered card of a stored story (nothing if the story is gone)."""

    @abc.abstractmethod
    async def count(self) -> int:
        """Stories held now (expired ones not counted)."""

    async def ready(self) -> str | None:
        """None when the store answers, else why not (for /readyz)."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryStore(StoryStore):
    """This process only: a cachetools TLRUCache, each story expiring `ttl_s` after its
    `created`. The laptop's default.

    Reads go through `in` and `Cache.__getitem__`, which do not refresh a story's place
    (TLRUCache's own `[]` would): the oldest *put* is evicted first, as in the SQLite and
    Redis stores, so the three backends keep the same stories.
    """

    name = "memory"

    def __init__(self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(capacity, ttl_s)
        self.clock = clock
        self._items: TLRUCache[str, StoredStory] = TLRUCache(
            maxsize=capacity, ttu=self._expires, timer=clock
        )
        self._lock = threading.Lock()  # `talkative tell` renders in worker threads

    def _expires(self, _key: str, story: StoredStory, _now: float) -> float:
        return story.created + self.ttl_s

    def _peek(self, story_id: str) -> StoredStory | None:
        if story_id not in self._items:  # absent or expired; no reordering
            return None
        return Cache.__getitem__(self._items, story_id)

    async def put(self, story: StoredStory) -> None:
        with self._lock:
            self._items[story.id] = story  # expires, then evicts the oldest over capacity

    async def get(self, story_id: str) -> StoredStory | None:
        with self._lock:
            return self._peek(story_id)

    async def put_card(self, story_id: str, png: bytes) -> None:
        with self._lock:
            stored = self._peek(story_id)
            if stored is not None:
                stored.card_png = png

    async def count(self) -> int:
        with self._lock:
            self._items.expire()
            return len(self._items)


def open_store(settings: GatewaySettings) -> StoryStore:
    """The store `settings.store_url` names (the backends' packages load only when used)."""
    url = settings.store_url
    capacity, ttl_s = settings.story_capacity, settings.story_ttl_s
    if url.startswith("memory://"):
        return MemoryStore(capacity, ttl_s)
    if url.startswith("sqlite://"):
        from gateway_service.sqlite_store import SqliteStore, sqlite_path

        return SqliteStore(
            sqlite_path(url),
            capacity,
            ttl_s,
            timeout_s=settings.store_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
    if url.startswith(("redis://", "rediss://", "unix://")):
        from gateway_service.redis_store import RedisStore

        return RedisStore(
            url,
            capacity,
            ttl_s,
            prefix=settings.store_key_prefix,
            timeout_s=settings.store_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
    raise ValueError(f"GATEWAY_STORE_URL={url!r}: use memory://, sqlite:///path or redis://...")
