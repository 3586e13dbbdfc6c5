"""What the gRPC and REST backends share: version selection, the deadline and retries.

A call has one deadline (settings.model_timeout_s) covering every attempt. Only
errors that say "the server is not there right now" are retried (gRPC UNAVAILABLE,
HTTP 503, refused or reset connections), by the shared policy (talkative_common/retries.py:
exponential backoff and jitter, so that restarted services do not hammer a model
server that is coming back up; no pause outlasts the deadline).
A deadline that passes is not retried: the time is spent, the caller gets a
ModelUnavailable and its service answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from talkative_common.model_client.base import ModelUnavailable
from talkative_common.retries import Exhausted, RetryPolicy

T = TypeVar("T")


class Retryable(ModelUnavailable):
    """The model server is unreachable or restarting: the call may be tried again."""


@dataclass(frozen=True)
class RemoteOptions:
    timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 0.1
    default_version: int | None = None  # used when a call names no version
    version_label: str | None = None  # used when a call names no version (and none is pinned)


@dataclass(frozen=True)
class Selector:
    """Which version of a model a request addresses: a number, a label, or the newest."""

    version: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"version {self.version}"
        return f"label {self.label!r}" if self.label else "the newest version"


def select(options: RemoteOptions, version: int | None) -> Selector:
    if version is not None:
        return Selector(version=version)
    if options.default_version is not None:
        return Selector(version=options.default_version)
    return Selector(label=options.version_label)


async def with_retries(
    attempt: Callable[[float], Awaitable[T]], options: RemoteOptions, what: str
) -> T:
    """Run `attempt(seconds_left)` until it succeeds, fails for good, or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.timeout_s

    def left() -> float:
        return deadline - loop.time()

    async def once() -> T:
        seconds = left()
        if seconds <= 0:  # not Retryable: the time is spent
            raise ModelUnavailable(f"{what}: no answer within {options.timeout_s:g} s")
        return await attempt(seconds)

    policy = RetryPolicy(retries=options.retries, backoff_s=options.backoff_s)
    try:
        return await policy.acall(once, retry_on=(Retryable,), deadline=left)
    except Exhausted as exc:
        raise ModelUnavailable(
            f"{what}: model server unavailable after {exc.attempts} attempts ({exc.last})"
        ) from exc.last
