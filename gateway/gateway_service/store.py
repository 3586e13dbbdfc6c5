"""A bounded, expiring in-memory store of stories, so their cards can be fetched after."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoredStory:
    id: str
    photo_jpeg: bytes  # the photo downscaled for the card, not the upload
    caption: str
    seed: str
    story: str
    model: str
    language: str
    created: float
    card_png: bytes | None = None  # rendered on the first GET, then reused
    alt_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class StoryStore:
    """LRU with a time to live: at most `capacity` stories, none older than `ttl_s`."""

    def __init__(
        self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity, self.ttl_s, self.clock = capacity, ttl_s, clock
        self._items: OrderedDict[str, StoredStory] = OrderedDict()
        self._lock = threading.Lock()  # cards render in worker threads

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(12)  # 16 URL-safe characters, not guessable

    def _expire(self, now: float) -> None:
        while self._items:
            oldest = next(iter(self._items.values()))
            if now - oldest.created < self.ttl_s:
                break
            self._items.popitem(last=False)

    def put(self, story: StoredStory) -> None:
        with self._lock:
            self._expire(self.clock())
            self._items[story.id] = story
            self._items.move_to_end(story.id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, story_id: str) -> StoredStory | None:
        with self._lock:
            self._expire(self.clock())
            return self._items.get(story_id)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._items)
