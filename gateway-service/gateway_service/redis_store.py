"""Stories in Redis, shared by every gateway replica (redis-py's asyncio client).

Keys, under `GATEWAY_STORE_KEY_PREFIX` (`talkative:gateway:`):
- `<prefix>story:<id>`: a hash (`meta` JSON, `photo` JPEG, `card` PNG once rendered)
  with a time to live of `story_ttl_s`: Redis drops it, the card with it;
- `<prefix>stories`: a sorted set of the ids by the time they were stored (Redis's own
  clock, so replicas agree), the size bound: a put adds its id, drops the ids whose
  stories have expired, and past `story_capacity` pops the oldest ids and deletes their
  stories. One Lua script, so concurrent puts from several replicas never over-trim.

A card is stored only if its story still exists, so no card outlives its story.
Redis is the operator's second line: `maxmemory` with `maxmemory-policy volatile-ttl`
evicts the stories nearest their end first if the bound above was set too high for the
memory (docs/gateway.md). The script names the keys it deletes itself, so the store
wants one Redis (with replicas or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway_service.store import StoredStory, StoryStore
from talkative_common.errors import Unavailable

# KEYS: story hash, index. ARGV: id, ttl_ms, capacity, meta, photo, card ("" = none), prefix.
# Scores are Redis's clock in microseconds (exact in a double), made strictly increasing
# so that the order of the puts is the order of eviction, even within one microsecond.
_PUT = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= now_us then now_us = tonumber(last[2]) + 1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'meta', ARGV[4], 'photo', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'card', ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now_us, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_us - tonumber(ARGV[2]) * 1000)
local evicted = 0
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #oldest, 2 do
    evicted = evicted + redis.call('DEL', ARGV[7] .. 'story:' .. oldest[i])
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return evicted
"""

# KEYS: story hash. ARGV: card. The card only joins a story that still exists (and so
# keeps its expiry: HSET leaves a key's time to live alone).
_PUT_CARD = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'card', ARGV[1])
  return 1
end
return 0
"""

# KEYS: index. ARGV: ttl_ms.
_COUNT = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_us - tonumber(ARGV[1]) * 1000)
return redis.call('ZCARD', KEYS[1])
"""


class RedisStore(StoryStore):
    name = "redis"

    def __init__(
        self,
        url: str,
        capacity: int,
        ttl_s: float,
        *,
        prefix: str = "talkative:gateway:",
        timeout_s: float = 2.0,
        retry_after_s: int = 5,
    ) -> None:
        super().__init__(capacity, ttl_s)
        self.prefix, self.retry_after_s = prefix, retry_after_s
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self.index = f"{prefix}stories"
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._put = self.redis.register_script(_PUT)
        self._put_card = self.redis.register_script(_PUT_CARD)
        self._count = self.redis.register_script(_COUNT)
        # The address without any password in it, for messages.
        pool: Any = self.redis.connection_pool
        kwargs = pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self.where = f"Redis at {where}"

    def key(self, story_id: str) -> str:
        return f"{self.prefix}story:{story_id}"

    def _unavailable(self, exc: RedisError) -> Unavailable:
        return Unavailable(
            f"the story store ({self.where}) is unavailable: {exc}",
            retry_after_s=self.retry_after_s,
        )

    async def put(self, story: StoredStory) -> None:
        args: list[bytes | str | int] = [
            story.id,
            self.ttl_ms,
            self.capacity,
            story.meta_json(),
            story.photo_jpeg,
            story.card_png or b"",
            self.prefix,
        ]
        try:
            await self._put(keys=[self.key(story.id), self.index], args=args)
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def get(self, story_id: str) -> StoredStory | None:
        try:
            meta, photo, card = await self.redis.hmget(self.key(story_id), "meta", "photo", "card")
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        if not isinstance(meta, bytes) or not isinstance(photo, bytes):
            return None
        png = card if isinstance(card, bytes) and card else None
        return StoredStory.from_parts(story_id, meta, photo, png)

    async def put_card(self, story_id: str, png: bytes) -> None:
        try:
            await self._put_card(keys=[self.key(story_id)], args=[png])
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def count(self) -> int:
        try:
            return int(await self._count(keys=[self.index], args=[self.ttl_ms]))
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def ready(self) -> str | None:
        try:
            await self.redis.ping()
        except RedisError as exc:
            return f"{self.where}: {exc}"
        return None

    async def close(self) -> None:
        await self.redis.aclose()
