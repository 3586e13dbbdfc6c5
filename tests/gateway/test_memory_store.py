"""The in-memory story store (a cachetools TLRUCache): reads do not refresh a story, so
the oldest put is evicted first, as in the SQLite and Redis stores; expiry counts from
each story's `created`. A fake clock: nothing waits."""

from __future__ import annotations

import asyncio

from gateway_service.store import MemoryStore, StoredStory


def story(story_id: str, created: float) -> StoredStory:
    return StoredStory(story_id, b"jpeg", "a cat", "Once", "Once upon", "tiny_en", "en", created)


def test_reads_do_not_refresh_and_expiry_counts_from_created() -> None:
    now = [1000.0]
    store = MemoryStore(capacity=2, ttl_s=60.0, clock=lambda: now[0])

    async def scenario() -> None:
        await store.put(story("a", now[0]))
        await store.put(story("b", now[0]))
        assert await store.get("a") is not None  # read: under LRU "b" would go next
        await store.put(story("c", now[0]))
        assert [await store.get(k) is not None for k in "abc"] == [False, True, True]
        await store.put_card("b", b"png")
        got = await store.get("b")
        assert got is not None and got.card_png == b"png"
        now[0] += 59.9
        assert await store.count() == 2
        now[0] += 0.1  # 60 s after `created`
        assert await store.get("b") is None and await store.count() == 0
        await store.put_card("b", b"late")  # does not bring it back
        assert await store.get("b") is None
        await store.put(story("old", now[0] - 61))  # already expired when put
        assert await store.count() == 0

    asyncio.run(scenario())
