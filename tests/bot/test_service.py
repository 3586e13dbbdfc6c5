"""`bot-service run`: the poll loop, /healthz /readyz /metrics, an outage, graceful shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.bot.conftest import mastodon_env, start_bot, stop_bot
from tests.bot.fakes.mastodon import FakeMastodon
from tests.bot.gateway import CountingGateway
from tests.support.servers import free_port


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition` holds. The bound only stops a broken bot from hanging the suite."""
    give_up = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < give_up, "the bot never got there"
        time.sleep(0.1)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def test_loop_survives_gateway_outage_serves_health_and_stops_cleanly(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("p.jpg", photo)
    sids = [mastodon.mention(f"u{i}", "", (url,)) for i in range(2)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway.down = True
    proc = start_bot(mastodon_env(tmp_path, gateway, mastodon, port=port), tmp_path)
    try:
        wait_for(lambda: gateway.story_calls >= 2)  # retried during the outage
        health = _get(f"{base}/healthz")
        assert health is not None and health.json()["status"] == "ok"
        ready = _get(f"{base}/readyz")
        assert ready is not None and ready.status_code == 503
        assert "gateway" in ready.json()["checks"]["dependencies"]
        assert ready.headers["retry-after"]
        assert all(mastodon.replies_to(s) == [] for s in sids)

        gateway.down = False
        wait_for(lambda: all(len(mastodon.replies_to(s)) == 1 for s in sids))
        wait_for(lambda: (r := _get(f"{base}/readyz")) is not None and r.status_code == 200)
        metrics = httpx.get(f"{base}/metrics").text
        assert 'bot_replies_total{kind="story",platform="mastodon"} 2.0' in metrics
        assert 'bot_failures_total{platform="mastodon",reason="gateway_down"}' in metrics
        assert 'bot_mentions{platform="mastodon",state="replied"} 2.0' in metrics
        status = httpx.get(f"{base}/v1/status").json()
        assert status["mentions"]["replied"] == 2
    finally:
        code, out = stop_bot(proc)
    assert code == 0, out
    assert "bot stopped" in out and "Traceback" not in out
    assert "test-token" not in out  # credentials never logged
