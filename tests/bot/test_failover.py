"""Two real bot processes (`bot-service run`, folder platform) sharing the state file and
the lease; the active one is killed (SIGKILL) while it works through the inbox. The
standby takes over: no mention is answered twice and none is lost.

The folder platform's `posted.jsonl` is the timeline: one line per reply posted, with the
pid that posted it. The takeover time is printed, not asserted (the machine may be busy).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_service.platforms.folder import POSTED_LOG
from tests.bot.conftest import BotProcess, bot_env, start_bot, stop_bot
from tests.bot.gateway import CountingGateway
from tests.support.redis_server import RedisServer, unique_prefix
from tests.support.servers import free_ports

MENTIONS = 6
LEASE_TTL_S = 2.0


def wait_for(condition: Callable[[], bool], what: str, give_up_s: float = 180.0) -> float:
    """Seconds until `condition()` holds. The bound only stops a broken bot hanging the suite."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < give_up_s, f"never happened: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def status(port: int) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=2)
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = answer.json()
    return body if body.get("lease") else None


def active(port: int) -> bool:
    body = status(port)
    return bool(body and body["lease"]["active"])


def posted(outbox: Path) -> list[dict[str, Any]]:
    path = outbox / POSTED_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("lease", ["sqlite", "redis"])
def test_active_bot_killed_standby_takes_over_exactly_once(
    lease: str,
    tmp_path: Path,
    gateway: CountingGateway,
    photo: bytes,
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    overrides: dict[str, Any] = {"lease_ttl_s": LEASE_TTL_S}
    if lease == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        overrides |= {"lease_url": server.url, "lease_name": unique_prefix("bot") + "lease"}
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    # One state file, one inbox and outbox, one lease: two replicas of one bot.
    port_a, port_b = free_ports(2)
    names = [f"photo{i}.jpg" for i in range(MENTIONS)]
    a = start_bot(bot_env(tmp_path, gateway, port=port_a, **overrides), tmp_path)
    b: BotProcess | None = None
    out_a = out_b = ""
    try:
        wait_for(lambda: active(port_a), "bot A active")
        b = start_bot(bot_env(tmp_path, gateway, port=port_b, **overrides), tmp_path)
        wait_for(lambda: status(port_b) is not None, "bot B answering")
        seen_a, seen_b = status(port_a), status(port_b)
        assert seen_a is not None and seen_b is not None
        assert not seen_b["lease"]["active"]  # B stands by...
        assert seen_b["lease"]["holder"] == seen_a["lease"]["instance"]  # ...behind A
        ready = httpx.get(f"http://127.0.0.1:{port_b}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"]["lease"].startswith("standby")

        for name in names:
            (inbox / name).write_bytes(photo)

        # Kill the active one mid-work: some answered, the rest waiting or in hand.
        wait_for(lambda: len(posted(outbox)) >= 2, "two replies from A")
        a.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        out_a, _ = a.communicate()
        assert a.returncode == -signal.SIGKILL
        answered_by_a = len(posted(outbox))

        takeover_s = wait_for(lambda: active(port_b), "bot B active")
        pid_b = b.pid
        wait_for(lambda: any(p["pid"] == pid_b for p in posted(outbox)), "a reply from B")
        first_reply_s = time.monotonic() - killed_at
        wait_for(
            lambda: len(list(outbox.glob("*.reply.json"))) == MENTIONS, "every mention answered"
        )
        final = status(port_b)
    finally:
        if a.poll() is None:
            a.kill()
            out_a, _ = a.communicate()
        if b is not None:
            code_b, out_b = stop_bot(b)

    assert code_b == 0, out_b
    lines = posted(outbox)
    per_mention = Counter(p["in_reply_to"] for p in lines)
    by_pid = Counter(p["pid"] for p in lines)
    replies = sorted(p.name.removesuffix(".reply.json") for p in outbox.glob("*.reply.json"))
    assert replies == sorted(names), "a mention was lost"
    assert max(per_mention.values()) == 1, f"answered twice: {per_mention}\n{out_a}\n{out_b}"
    assert set(by_pid) <= {a.pid, pid_b} and by_pid[pid_b] >= 1  # B did take over work
    assert final is not None and final["mentions"]["replied"] == MENTIONS
    assert sum(final["mentions"][s] for s in ("new", "captioned", "replying", "failed")) == 0
    assert "lease acquired" in out_b and "Traceback" not in out_b
    figure = (
        f"{lease} lease (TTL {LEASE_TTL_S:g} s): bot A (pid {a.pid}) killed -9 after "
        f"{answered_by_a} of {MENTIONS} replies; bot B (pid {pid_b}) took over "
        f"{takeover_s:.2f} s after the kill and posted its first reply {first_reply_s:.2f} s "
        f"after it; {len(lines)} replies posted in all ({dict(by_pid)} by pid), "
        f"{len(replies)} mentions answered, none twice; gateway stories asked: "
        f"{gateway.story_calls}"
    )
    print("\n" + figure)
    record_property("figure", figure)
