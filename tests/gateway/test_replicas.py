"""Two gateway replicas sharing the Redis story store: a story told through gateway A,
its card fetched through gateway B.

Two real gateway processes (`gateway_service.main.run`, as the console script and the
container run it), configured by GATEWAY_* variables only, in front of the session's
caption-service and textgen-service, and one real redis-server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.support.redis_server import RedisServer, unique_prefix
from tests.support.service_process import ServiceProcess

TTL_S = 120


@pytest.fixture()
def replicas(
    caption_url: str, textgen_url: str, redis_server: RedisServer
) -> Iterator[tuple[ServiceProcess, ServiceProcess, str]]:
    """Gateways A and B on one Redis store, and the key prefix they share."""
    prefix = unique_prefix("replicas")
    env = {
        "GATEWAY_CAPTION_URL": caption_url,
        "GATEWAY_TEXTGEN_URL": textgen_url,
        "GATEWAY_STORE_URL": redis_server.url,
        "GATEWAY_STORE_KEY_PREFIX": prefix,
        "GATEWAY_STORY_TTL_S": str(TTL_S),
        "GATEWAY_MAX_NEW_TOKENS_LIMIT": "500",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_LOG_FORMAT": "text",
    }
    with ServiceProcess("gateway", env) as a, ServiceProcess("gateway", env) as b:
        yield a, b, prefix


def test_story_told_through_a_its_card_fetched_through_b(
    replicas: tuple[ServiceProcess, ServiceProcess, str], redis_server: RedisServer, jpeg: bytes
) -> None:
    a, b, prefix = replicas
    assert a.pid != b.pid and a.url != b.url
    redis = redis_server.client()
    with (
        httpx.Client(base_url=a.url, timeout=120) as gw_a,
        httpx.Client(base_url=b.url, timeout=120) as gw_b,
    ):
        for gateway in (gw_a, gw_b):
            ready = gateway.get("/readyz").json()
            assert ready["checks"]["story-store"] == "ready (redis)"

        told = gw_a.post(
            "/v1/stories",
            files={"image": ("cat.jpg", jpeg, "image/jpeg")},
            data={"model": "tiny_en", "max_new_tokens": "40", "seed": "3"},
        )
        assert told.status_code == 200, told.text
        story = told.json()
        key = f"{prefix}story:{story['id']}"
        assert redis.exists(key) and not redis.hexists(key, "card")  # kept, not rendered yet
        assert 0 < redis.pttl(key) <= TTL_S * 1000  # expires with the story's TTL

        # B never saw the request; it renders the card from the stored photo, and stores it.
        card = gw_b.get(story["card_url"])
        assert card.status_code == 200, card.text
        assert card.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(card.content)) as img:
            assert img.format == "PNG" and img.size == (1080, 1350)
        assert redis.hget(key, "card") == card.content

        # A serves the stored card, as stored, without rendering it again: changed in
        # Redis behind the gateways' backs, A answers with the changed bytes.
        marker = io.BytesIO()
        Image.new("RGB", (2, 2), (255, 0, 0)).save(marker, format="PNG")
        redis.hset(key, "card", marker.getvalue())
        again = gw_a.get(story["card_url"])
        assert again.status_code == 200 and again.content == marker.getvalue()

        # An id neither replica ever stored is a 404 on both.
        for gateway in (gw_a, gw_b):
            missing = gateway.get("/v1/stories/AAAAAAAAAAAAAAAA/card.png")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
    photo_bytes = len(redis.hget(key, "photo") or b"")
    redis.close()
    print(
        f"story {story['id']} told through gateway A (pid {a.pid}), card fetched through "
        f"gateway B (pid {b.pid}): {len(card.content)} bytes of PNG stored beside "
        f"{photo_bytes} bytes of photo in Redis"
    )
