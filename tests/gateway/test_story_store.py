"""The story stores, each backend (memory, SQLite, a real Redis): what they keep, that
replicas share it, their size bound and their time to live.

Expiry is waited on as a condition (the story gone), with small TTLs; the bound on the
wait only stops a broken store from hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway_service.settings import GatewaySettings
from gateway_service.sqlite_store import sqlite_path
from gateway_service.store import StoredStory, StoryStore, open_store
from talkative_common.errors import Unavailable, status_of
from tests.support.redis_server import RedisServer, unique_prefix
from tests.support.servers import free_port

BACKENDS = ["memory", "sqlite", "redis"]


def settings(url: str, **values: Any) -> GatewaySettings:
    return GatewaySettings(store_url=url, **values)


@dataclass
class Backend:
    """Where one backend keeps its stories; `make` opens a store there (two stores from one
    Backend are two replicas sharing it, except for memory)."""

    kind: str
    url: str
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # sqlite
    redis: RedisServer | None = None

    def make(self, capacity: int = 10, ttl_s: float = 60.0) -> StoryStore:
        return open_store(
            settings(self.url, story_capacity=capacity, story_ttl_s=ttl_s, **self.values)
        )

    @property
    def prefix(self) -> str:
        return str(self.values["store_key_prefix"])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    kind: str = request.param
    if kind == "memory":
        return Backend(kind, "memory://")
    if kind == "sqlite":
        path = tmp_path / "stories.db"
        return Backend(kind, f"sqlite://{path}", path=path)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend(kind, server.url, {"store_key_prefix": unique_prefix(kind)}, redis=server)


def story(story_id: str, card: bytes | None = None) -> StoredStory:
    return StoredStory(
        id=story_id,
        photo_jpeg=b"\xff\xd8 photo of " + story_id.encode(),
        caption="a cat on a mat",
        prompt="Once upon a time there was a cat on a mat. One day,",
        story="Once upon a time there was a cat on a mat. One day, it purred — été.",
        model="tiny_en",
        language="en",
        created=time.time(),
        card_png=card,
        alt_text="A photo of a cat on a mat.",
        extra={"n": 1},
    )


async def wait_for(condition: Callable[[], Awaitable[bool]], give_up_s: float = 30.0) -> float:
    """Seconds until `condition()` holds, polled every 20 ms."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < give_up_s, "the store never got there"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_keeps_a_story_and_then_its_card(backend: Backend) -> None:
    async def scenario() -> None:
        store = backend.make()
        try:
            assert store.name == backend.kind
            kept = story(StoryStore.new_id())
            await store.put(kept)
            got = await store.get(kept.id)
            assert got == kept and got.card_png is None
            await store.put_card(kept.id, b"\x89PNG card")
            got = await store.get(kept.id)
            assert got is not None and got.card_png == b"\x89PNG card"
            # No story, no card: a card never creates a story.
            await store.put_card("no-such-story", b"\x89PNG")
            assert await store.get("no-such-story") is None
            assert await store.count() == 1
            assert await store.ready() is None
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_replicas_share_stories_and_cards(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url, values = f"sqlite://{tmp_path / 'shared.db'}", {}
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url, values = server.url, {"store_key_prefix": unique_prefix("shared")}

    async def scenario() -> None:
        a, b = open_store(settings(url, **values)), open_store(settings(url, **values))
        try:
            told = story("told-through-a-01")
            await a.put(told)
            seen = await b.get(told.id)
            assert seen == told
            await b.put_card(told.id, b"\x89PNG rendered by b")
            again = await a.get(told.id)
            assert again is not None and again.card_png == b"\x89PNG rendered by b"
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_size_bound_evicts_the_oldest(backend: Backend) -> None:
    async def scenario() -> None:
        store = backend.make(capacity=3)
        try:
            for i in range(5):
                await store.put(story(f"story-{i}", card=b"\x89PNG" if i % 2 else None))
            assert await store.count() == 3
            assert [await store.get(f"story-{i}") is not None for i in range(5)] == [
                False, False, True, True, True
            ]  # fmt: skip
            # The newest is never the one evicted, even put right after the others.
            await store.put(story("story-5"))
            assert await store.get("story-5") is not None
            assert await store.get("story-2") is None
        finally:
            await store.close()

    asyncio.run(scenario())
    # What is held really is bounded, not only hidden.
    if backend.path is not None:
        db = sqlite3.connect(backend.path)
        rows = db.execute("SELECT id FROM stories ORDER BY seq").fetchall()
        db.close()
        assert [r[0] for r in rows] == ["story-3", "story-4", "story-5"]
    if backend.redis is not None:
        client, prefix = backend.redis.client(), backend.prefix
        assert client.zcard(f"{prefix}stories") == 3
        keys = sorted(k.decode() for k in client.scan_iter(f"{prefix}story:*"))
        assert keys == [f"{prefix}story:story-{i}" for i in (3, 4, 5)]
        client.close()


def test_stories_and_cards_expire(backend: Backend) -> None:
    ttl_s = 1.0

    async def scenario() -> float:
        store = backend.make(ttl_s=ttl_s)
        try:
            kept = story("short-lived-01")
            await store.put(kept)
            await store.put_card(kept.id, b"\x89PNG card")
            got = await store.get(kept.id)
            assert got is not None and got.card_png == b"\x89PNG card"
            if backend.redis is not None:
                client = backend.redis.client()
                key = f"{backend.prefix}story:{kept.id}"
                # The card joined the story's key and kept its expiry.
                assert 0 < client.pttl(key) <= ttl_s * 1000
                assert client.hexists(key, "card")

            async def gone() -> bool:
                return await store.get(kept.id) is None

            waited = await wait_for(gone)
            lived = time.time() - kept.created
            assert lived >= ttl_s - 0.01, f"expired after {lived:.3f} s, before its TTL"
            assert await store.count() == 0
            # A card rendered late does not bring an expired story back.
            await store.put_card(kept.id, b"\x89PNG late")
            assert await store.get(kept.id) is None
            if backend.redis is not None:
                assert client.exists(key) == 0  # the photo and the card are gone from Redis
                client.close()
            return waited
        finally:
            await store.close()

    waited = asyncio.run(scenario())
    print(f"{backend.kind}: a {ttl_s:g} s story was gone {waited:.2f} s after it was read")


def test_unreachable_redis_is_a_503_not_a_500() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def scenario() -> None:
        store = open_store(settings(url, store_timeout_s=1))
        try:
            with pytest.raises(Unavailable) as caught:
                await store.put(story("no-redis-0001"))
            assert status_of(caught.value) == 503 and caught.value.retry_after_s >= 1
            assert "story store" in caught.value.detail and "127.0.0.1" in caught.value.detail
            with pytest.raises(Unavailable):
                await store.get("no-redis-0001")
            why = await store.ready()
            assert why is not None and "127.0.0.1" in why
        finally:
            await store.close()

    asyncio.run(scenario())


def test_store_urls() -> None:
    assert sqlite_path("sqlite:///srv/stories.db") == Path("/srv/stories.db")
    assert sqlite_path("sqlite://var/stories.db") == Path("var/stories.db")
    with pytest.raises(ValueError, match="name the file"):
        sqlite_path("sqlite:///")
    assert settings("memory://").store_url == "memory://"
    assert settings("redis://redis:6379/0").store_url == "redis://redis:6379/0"
    for bad in ("postgres://db/x", "redis://", "memory"):
        with pytest.raises(ValidationError):
            settings(bad)


def test_a_story_kept_before_the_prompt_rename_still_reads() -> None:
    """A shared store (Redis) outlives a rolling upgrade: meta written with the old key
    `seed` for the prompt text reads back as `prompt`."""
    kept = story("renamed-0001")
    meta = json.loads(kept.meta_json())
    meta["seed"] = meta.pop("prompt")
    again = StoredStory.from_parts(kept.id, json.dumps(meta), kept.photo_jpeg, None)
    assert again.prompt == kept.prompt and again.story == kept.story
