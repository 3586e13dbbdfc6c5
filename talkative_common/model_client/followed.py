"""Follow the version of a model that the model server serves, and switch when it moves.

A service addresses a model by label (or by "the newest served"), but everything it
reads beside the graph (model card, vocabulary, tokenizer) belongs to one version.
`FollowedVersion` holds the object a service built for one resolved version and
sends that explicit number on every call, so a request never pairs one version's
graph with another's vocabulary. A background poll re-resolves the version: when
the label moves, the new version's object is built completely (files, contract
check, warm-up) and only then swapped in, in one assignment; a request takes
`current` once at its start and uses only it. A switch that fails leaves the old
version serving and is tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from talkative_common.model_client.base import ModelClient
from talkative_common.settings import ModelServiceSettings

T = TypeVar("T")
log = logging.getLogger("talkative_common.model_client.followed")


@dataclass(frozen=True)
class _Served(Generic[T]):
    version: int
    value: T


def version_poll_interval(settings: ModelServiceSettings, client: ModelClient) -> float | None:
    """Seconds between re-resolutions, or None when the version cannot move.

    A pinned version never moves, and the in-process backend keeps the newest version
    on disk at start-up: there is no model server whose labels could change.
    """
    if client.backend == "inprocess" or settings.model_version is not None:
        return None
    return settings.model_version_poll_s


class FollowedVersion(Generic[T]):
    """The object built for the version of `model` that the model server serves now.

    `build(version)` makes a complete, verified and warmed-up object for one version,
    or raises. `start()` builds the first one (its failure is the service's start-up
    failure) and, with `poll_s`, starts polling; `close()` stops the poll.
    """

    def __init__(
        self,
        model: str,
        client: ModelClient,
        build: Callable[[int], Awaitable[T]],
        *,
        poll_s: float | None = None,
    ) -> None:
        self.model, self.client, self.poll_s = model, client, poll_s
        self._build = build
        self._served: _Served[T] | None = None
        self._lock = asyncio.Lock()  # one resolution and build at a time
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None

    @property
    def current(self) -> T:
        """The object of the version serving now; take it once per request."""
        return self._state().value

    @property
    def version(self) -> int:
        return self._state().version

    def _state(self) -> _Served[T]:
        if self._served is None:
            raise RuntimeError(f"model {self.model!r} is not started")
        return self._served

    async def start(self) -> T:
        """Build the served version's object (errors propagate), then poll if asked to."""
        async with self._lock:
            version = await self.client.served_version(self.model)
            self._served = _Served(version, await self._build(version))
        log.info(
            "serving %s v%d",
            self.model,
            version,
            extra={"model": self.model, "version": version},
        )
        if self.poll_s is not None and self._task is None:
            self._task = asyncio.create_task(self._poll(self.poll_s), name=f"follow {self.model}")
        return self._served.value

    async def refresh(self) -> bool:
        """Re-resolve the served version; switch to it if it moved. True if it switched.

        Never raises (cancellation aside): a failure keeps the old version serving.
        """
        async with self._lock:
            old = self._state().version
            version: int | None = None
            try:
                version = await self.client.served_version(self.model)
                if version == old:
                    self._steady(old)
                    return False
                built = await self._build(version)
            except Exception as exc:  # whatever broke, the old version goes on serving
                self._failed(old, version, exc)
                return False
            self._served = _Served(version, built)
            self._last_error = None
        log.info(
            "switched %s from v%d to v%d",
            self.model,
            old,
            version,
            extra={"model": self.model, "version": version},
        )
        return True

    async def _poll(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.refresh()

    def _failed(self, old: int, version: int | None, exc: Exception) -> None:
        target = f"v{version}" if version is not None else "the served version"
        # Once per distinct error, not once per poll; the kind of error and its target
        # tell errors apart, since messages may carry details that vary between polls.
        key = f"{target} {type(exc).__name__}"
        if key != self._last_error:
            log.warning(
                "%s: cannot switch to %s, v%d goes on serving: %s: %s",
                self.model,
                target,
                old,
                type(exc).__name__,
                exc,
                extra={"model": self.model, "version": old},
            )
        self._last_error = key

    def _steady(self, version: int) -> None:
        if self._last_error is not None:
            log.info(
                "%s: v%d is the served version, the earlier failure is over",
                self.model,
                version,
                extra={"model": self.model, "version": version},
            )
        self._last_error = None

    async def close(self) -> None:
        """Stop polling; the current object stays readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
