"""The lease that makes one bot instance the active poster, on each backend (SQLite in the
state file, a real Redis): one holder at a time, a dead holder replaced once its lease
has run out, and a holder that cannot renew stopping before anyone else can take over.

Times are waited on as conditions; what is asserted is the order of events, not speed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot_service.lease import Attempt, LeaseBackend, LeaseKeeper, open_lease
from tests.support.redis_server import RedisServer, unique_prefix

TTL_S = 1.0
Opener = Callable[[], LeaseBackend]


@pytest.fixture(params=["sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend at one place: each call is another instance's view of the lease."""
    url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    name = unique_prefix("lease") + "lease"
    opened: list[LeaseBackend] = []

    def open_one() -> LeaseBackend:
        backend = open_lease(url, tmp_path / "state.sqlite3", name, TTL_S)
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        with contextlib.suppress(Exception):  # closed already by a keeper's stop()
            backend.close()


def wait_for(condition: Callable[[], bool], give_up_s: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < give_up_s, "never happened"
        time.sleep(0.01)
    return time.monotonic() - started


def test_one_holder_at_a_time_and_release_hands_over(opener: Opener) -> None:
    a = LeaseKeeper(opener(), TTL_S, holder="a")
    b = LeaseKeeper(opener(), TTL_S, holder="b")
    a.attempt()
    b.attempt()
    assert a.holding() and not b.holding()
    assert b.current_holder == "a"
    a.attempt()  # a renewal
    b.attempt()
    assert a.holding() and not b.holding()
    assert b.status()["holder"] == "a" and not b.status()["active"]
    a.stop()  # releases: b takes over at its next try, without waiting for the TTL
    b.attempt()
    assert b.holding() and b.current_holder == "b"
    b.stop()


def test_a_dead_holder_is_replaced_once_its_lease_ran_out(opener: Opener) -> None:
    a = LeaseKeeper(opener(), TTL_S, holder="a")
    a.attempt()  # then never renews: killed
    taken_at = time.monotonic()
    b = LeaseKeeper(opener(), TTL_S, holder="b")
    waited = wait_for(lambda: (b.attempt(), b.holding())[1])
    assert time.monotonic() - taken_at >= TTL_S - 0.05, "taken over before the lease ended"
    print(f"{a.backend.name}: lease taken over {waited:.2f} s after the holder stopped (TTL 1 s)")
    b.stop()


class Breaks(LeaseBackend):
    """A backend that stops answering when told: a holder cut off from the store."""

    def __init__(self, inner: LeaseBackend) -> None:
        self.inner, self.name, self.broken = inner, inner.name, False

    def acquire(self, holder: str, ttl_s: float) -> Attempt:
        if self.broken:
            raise ConnectionError("cut off")
        return self.inner.acquire(holder, ttl_s)

    def release(self, holder: str) -> None:
        self.inner.release(holder)


def test_a_holder_that_cannot_renew_stops_before_another_takes_over(opener: Opener) -> None:
    cut = Breaks(opener())
    a = LeaseKeeper(cut, TTL_S, holder="a").start()
    b = LeaseKeeper(opener(), TTL_S, holder="b").start()
    try:
        wait_for(lambda: a.holding() and b.current_holder == "a")
        cut.broken = True
        wait_for(lambda: not a.holding())
        a_stopped = time.monotonic()
        assert not b.holding()  # a stops posting first...
        wait_for(b.holding)
        b_started = time.monotonic()
        # ...and b may post only later: never both at once.
        assert b_started > a_stopped
        assert a.error is not None and "cut off" in a.error
        print(f"{cut.name}: holder stopped, {b_started - a_stopped:.2f} s later the standby began")
    finally:
        a.stop()
        b.stop()


def test_keeper_with_a_controlled_clock() -> None:
    """The arithmetic: renew every TTL/3, post until 2/3 TTL after a confirmed renewal."""
    now = [100.0]
    answers = [Attempt(True, "a", 30.0)]

    class Script(LeaseBackend):
        name = "script"

        def acquire(self, holder: str, ttl_s: float) -> Attempt:
            if not answers:
                raise TimeoutError("no answer")
            return answers.pop(0)

        def release(self, holder: str) -> None:
            pass

    keeper = LeaseKeeper(Script(), 30.0, holder="a", clock=lambda: now[0])
    assert keeper.attempt() == 10.0  # renew at TTL/3
    now[0] = 119.9
    assert keeper.holding()
    assert keeper.attempt() == 5.0  # failed renewal: try again sooner; nothing extended
    now[0] = 120.0
    assert not keeper.holding()  # 2/3 TTL after the last confirmed renewal: stop posting
    answers.append(Attempt(False, "b", 12.5))
    assert keeper.attempt() == 10.0 and keeper.current_holder == "b"
    answers.append(Attempt(False, "b", 0.5))
    assert keeper.attempt() == pytest.approx(0.51)  # try when b's lease can have run out
