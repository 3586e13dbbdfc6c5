"""One active poster among bot replicas: a lease with a time to live, renewed by its holder.

Every instance runs a `LeaseKeeper` thread. The instance holding the lease is the active
one: it polls and posts. The others stand by, and try again when the holder's lease runs
out (at the latest every TTL/3), so one of them takes over within about TTL of the
holder's death (its last renewal plus TTL, plus the standby's poll).

Two instances never post at once:
- the holder renews every TTL/3 and counts its lease from *before* it asked (its local
  monotonic clock): a renewal it cannot confirm extends nothing;
- it starts a post only while fewer than 2/3 TTL have passed since the start of its
  last confirmed renewal (checked before it records the intent, and again right before
  the call that publishes, after any media upload), so a holder that cannot renew stops
  a third of the TTL before its lease can end in the store and anyone else can take it.
  A post already in flight has that third to finish: hence `BOT_PLATFORM_TIMEOUT_S`
  (30 s) at most `BOT_LEASE_TTL_S / 3` (90 s by default; docs/bot.md);
- taking, renewing and releasing are each one atomic step in the store (an SQLite
  upsert; a Redis Lua script), and only the holder's own id renews or releases.

Backends (`BOT_LEASE_URL`):
- SQLite (default): a row in the state file, for instances on one host that share
  `BOT_STATE_PATH`; its times are the host's wall clock, which both instances read.
- Redis (`redis://host:6379/0`): a key with a time to live kept by Redis's own clock, for
  instances on several hosts.
"""

from __future__ import annotations

import abc
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bot_service")


@dataclass(frozen=True)
class Attempt:
    held: bool  # this instance holds the lease now
    holder: str | None  # who holds it (None: nobody)
    expires_in_s: float | None  # what the holder's lease has left, as the store sees it


class LeaseBackend(abc.ABC):
    name: str

    @abc.abstractmethod
    def acquire(self, holder: str, ttl_s: float) -> Attempt:
        """Take the lease if it is free or has run out, renew it if `holder` has it."""

    @abc.abstractmethod
    def release(self, holder: str) -> None:
        """Give the lease up, if `holder` has it, so a standby takes over at once."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL   -- epoch seconds
);
"""


class SqliteLease(LeaseBackend):
    name = "sqlite"

    def __init__(self, path: Path, lease_name: str, timeout_s: float) -> None:
        self.path, self.lease_name = path, lease_name
        path.parent.mkdir(parents=True, exist_ok=True)
        # A connection of its own, used by the keeper's thread only; a short busy timeout,
        # so a renewal never waits long behind another writer.
        self.db = sqlite3.connect(
            path, isolation_level=None, timeout=timeout_s, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def acquire(self, holder: str, ttl_s: float) -> Attempt:
        now = time.time()
        taken = self.db.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
            (self.lease_name, holder, now + ttl_s, now),
        ).rowcount
        if taken == 1:
            return Attempt(True, holder, ttl_s)
        row = self.db.execute(
            "SELECT holder, expires_at FROM leases WHERE name = ?", (self.lease_name,)
        ).fetchone()
        if row is None:  # released between the two statements
            return Attempt(False, None, 0.0)
        return Attempt(False, str(row[0]), max(0.0, float(row[1]) - time.time()))

    def release(self, holder: str) -> None:
        self.db.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (self.lease_name, holder)
        )

    def close(self) -> None:
        self.db.close()


# KEYS: the lease. ARGV: holder, ttl in ms. Returns {held, holder, ms left}.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1], tonumber(ARGV[2])}
end
return {0, current, redis.call('PTTL', KEYS[1])}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease(LeaseBackend):
    name = "redis"

    def __init__(self, url: str, lease_name: str, timeout_s: float) -> None:
        import redis  # only when a Redis lease is configured

        self.key = lease_name
        self.redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)

    def acquire(self, holder: str, ttl_s: float) -> Attempt:
        held, current, left_ms = self._acquire(
            keys=[self.key], args=[holder, max(1, round(ttl_s * 1000))]
        )
        who = current.decode() if isinstance(current, bytes) else str(current)
        return Attempt(bool(held), who, max(0.0, int(left_ms) / 1000))

    def release(self, holder: str) -> None:
        self._release(keys=[self.key], args=[holder])

    def close(self) -> None:
        self.redis.close()


def open_lease(url: str | None, state_path: Path, lease_name: str, ttl_s: float) -> LeaseBackend:
    """The backend `url` names: unset or `sqlite://` is the state file itself."""
    timeout_s = max(0.2, ttl_s / 6)  # a renewal that takes longer is as good as failed
    if not url or url == "sqlite://":
        return SqliteLease(state_path, lease_name, timeout_s)
    if url.startswith("sqlite://"):
        return SqliteLease(Path(url.removeprefix("sqlite://")), lease_name, timeout_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLease(url, lease_name, timeout_s)
    raise ValueError(f"BOT_LEASE_URL={url!r}: use sqlite:// (the state file) or redis://...")


def instance_id() -> str:
    """This process, as the lease and the logs name it: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    """Takes, renews and releases the lease in a thread of its own; `holding()` says whether
    this instance may post now."""

    def __init__(
        self,
        backend: LeaseBackend,
        ttl_s: float,
        *,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend, self.ttl_s, self.clock = backend, ttl_s, clock
        self.holder = holder or instance_id()
        self.renew_every_s = ttl_s / 3
        self.valid_for_s = ttl_s * 2 / 3  # after the start of a confirmed renewal
        self._valid_until = 0.0
        self._was_holding = False
        self.current_holder: str | None = None
        self.error: str | None = None
        self.acquired_count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the bot asks ------------------------------------------------------------------

    def holding(self) -> bool:
        return self.clock() < self._valid_until

    def wait_held(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Wait until this instance holds the lease, at most `timeout_s` (or until `stop`)."""
        deadline = self.clock() + timeout_s
        while not self.holding():
            if self.clock() >= deadline or (stop is not None and stop.is_set()):
                return False
            time.sleep(0.02)
        return True

    def status(self) -> dict[str, Any]:
        active = self.holding()
        return {
            "backend": self.backend.name,
            "instance": self.holder,
            "active": active,
            "holder": self.holder if active else self.current_holder,
            "ttl_s": self.ttl_s,
            "error": self.error,
        }

    # -- the keeper -------------------------------------------------------------------------

    def attempt(self) -> float:
        """One try at taking or renewing the lease; returns the seconds until the next."""
        started = self.clock()
        try:
            result = self.backend.acquire(self.holder, self.ttl_s)
        except Exception as exc:  # the store is unreachable: what we hold runs out alone
            self.error = f"{exc.__class__.__name__}: {exc}"
            log.warning("lease: cannot reach the %s store: %s", self.backend.name, self.error)
            return self.renew_every_s / 2
        self.error = None
        self.current_holder = result.holder
        if result.held:
            self._valid_until = started + self.valid_for_s
            if not self._was_holding:
                self.acquired_count += 1
                log.info(
                    "lease acquired (%s): %s is the active poster", self.backend.name, self.holder
                )
            self._was_holding = True
            return self.renew_every_s
        self._valid_until = 0.0
        if self._was_holding:
            log.warning("lease lost to %s: standing by", result.holder)
        elif self.acquired_count == 0 and self.current_holder is not None:
            log.debug("lease held by %s: standing by", result.holder)
        self._was_holding = False
        # Try again as soon as the holder's lease can have run out, and at least every TTL/3.
        left = result.expires_in_s if result.expires_in_s is not None else self.renew_every_s
        return min(self.renew_every_s, max(0.01, left + 0.01))

    def _run(self, wait: float) -> None:
        while not self._stop.wait(wait):
            wait = self.attempt()

    def start(self) -> LeaseKeeper:
        wait = self.attempt()  # at once, so a lone instance is active from its first poll
        self._thread = threading.Thread(
            target=self._run, args=(wait,), name="bot-lease", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and give the lease up (call once the bot has stopped posting)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_s)
        held, self._valid_until = self._was_holding, 0.0
        try:
            if held:
                self.backend.release(self.holder)
                log.info("lease released")
        except Exception as exc:
            log.warning("lease: could not release it (it runs out alone): %s", exc)
        finally:
            self.backend.close()
