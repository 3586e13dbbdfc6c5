"""Async HTTP clients to caption-service and textgen-service.

One pooled httpx.AsyncClient per dependency (connections reused across requests),
a connect timeout and a per-call read timeout, and bounded retries (the shared
policy of talkative_common/retries.py: exponential backoff with jitter) for the failures a
retry can cure: a refused or timed-out connection, and a 502/503/504 answer. A
dependency that accepted the request and then hangs is not retried (that would
double the wait): its timeout becomes a 503 at once. Every failure of a dependency
reaches the caller as `Unavailable` (503 + Retry-After); a 4xx from a dependency is
the caller's fault and is passed on with its status and detail.

A watchdog (`watch`) probes each dependency's /healthz. A process that is frozen
(SIGSTOP, a stuck event loop) still accepts connections, so without it every request
would wait out the whole read timeout. After `probe_failures` missed probes in a row
the dependency is down: new calls get 503 at once, and calls already waiting on it
are answered 503 too, until a probe succeeds again.

Every call made while serving a request carries that request's id (X-Request-ID, from
talkative_common/logging.py), so caption-service and textgen-service log the gateway's id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from talkative_common.errors import Unavailable
from talkative_common.logging import REQUEST_ID_HEADER, request_id
from talkative_common.problems import Problem
from talkative_common.retries import Exhausted, RetryPolicy, Transient, retry_after_seconds

log = logging.getLogger("gateway.clients")
RETRYABLE_STATUS = frozenset({502, 503, 504})


@dataclass
class CallTiming:
    """Time spent waiting on a dependency, so the gateway can report its own overhead."""

    ms: float = 0.0  # waiting, as the gateway sees it (the network hop included)
    attempts: int = 0
    server_ms: float = 0.0  # working, as the dependency reports it (Server-Timing)


def server_ms(response: httpx.Response) -> float:
    """The `app;dur=` of a Server-Timing header, or 0 when there is none."""
    for metric in response.headers.get("server-timing", "").split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            try:
                return float(params[4:])
            except ValueError:
                return 0.0
    return 0.0


def _detail(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or f"status {response.status_code}", {}
    if not isinstance(body, dict):
        return f"status {response.status_code}", {}
    extra = {"errors": body["errors"]} if isinstance(body.get("errors"), list) else {}
    return str(body.get("detail") or body.get("title") or response.reason_phrase), extra


class ServiceClient:
    """What both dependencies share: pooling, timeouts, retries, error mapping."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        retries: int,
        backoff_s: float,
        retry_after_s: int,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name, self.retries, self.backoff_s = name, retries, backoff_s
        # The dependency's Retry-After is passed on in our 503 (`_down`), not waited out
        # while a user's request is held; a 429 or a 500 is not retried (RETRYABLE_STATUS).
        self.policy = RetryPolicy(
            retries=retries,
            backoff_s=backoff_s,
            statuses=RETRYABLE_STATUS,
            wait_retry_after=False,
        )
        self.retry_after_s, self.timeout_s = retry_after_s, timeout_s
        self.down = asyncio.Event()  # set while the watchdog finds the dependency dead
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def close(self) -> None:
        await self.http.aclose()

    def _down(self, why: str, retry_after: str | None = None) -> Unavailable:
        seconds = self.retry_after_s
        if retry_after and retry_after.isdigit():
            seconds = max(1, min(int(retry_after), 600))
        return Unavailable(f"The {self.name} is unavailable: {why}", retry_after_s=seconds)

    async def watch(self, interval_s: float, timeout_s: float, failures: int) -> None:
        """Probe /healthz every `interval_s` until cancelled; set `down` after `failures`
        misses in a row, clear it at the first answer."""
        misses = 0
        while True:
            try:
                answer = await self.http.get("/healthz", timeout=timeout_s)
                alive = answer.status_code == 200
            except httpx.HTTPError:
                alive = False
            if alive:
                misses = 0
                self._answered()
            else:
                misses += 1
                if misses >= failures and not self.down.is_set():
                    log.warning(
                        "%s missed %d health checks; refusing calls to it until it answers",
                        self.name,
                        misses,
                        extra={"dependency": self.name},
                    )
                    self.down.set()
            await asyncio.sleep(interval_s)

    def _answered(self) -> None:
        """The dependency answered a probe: calls to it go through again."""
        if self.down.is_set():
            log.warning("%s answers again", self.name, extra={"dependency": self.name})
            self.down.clear()

    def _dead(self) -> Unavailable:
        return self._down("it does not answer its health checks")

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt; `_dead()` as soon as the watchdog declares the dependency down."""
        if self.down.is_set():
            raise self._dead()
        call = asyncio.ensure_future(self.http.request(method, path, **kwargs))
        dead = asyncio.ensure_future(self.down.wait())
        try:
            await asyncio.wait((call, dead), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this request is itself cancelled (the client left)
            dead.cancel()
            if not call.done():
                call.cancel()
        if not call.done():  # the watchdog spoke first
            raise self._dead()
        return call.result()

    async def request(
        self, method: str, path: str, timing: CallTiming | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise Problem / Unavailable."""
        timing = timing if timing is not None else CallTiming()
        rid = request_id.get()
        if rid:  # None: not serving a request (the watchdog's probes)
            kwargs["headers"] = {REQUEST_ID_HEADER: rid, **(kwargs.get("headers") or {})}

        async def attempt() -> httpx.Response:
            timing.attempts += 1
            started = time.perf_counter()
            try:
                response = await self._send(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise Transient(f"cannot connect ({exc.__class__.__name__})") from exc
            except httpx.TimeoutException as exc:
                # Connected, then silence: a hung dependency. Retrying would only double the wait.
                raise self._down(f"no answer within {self.timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise Transient(f"the connection failed ({exc.__class__.__name__})") from exc
            finally:
                timing.ms += (time.perf_counter() - started) * 1000
            timing.server_ms += server_ms(response)
            if response.status_code < 400:
                return response
            detail, extra = _detail(response)
            if self.policy.retryable(response.status_code):
                after = retry_after_seconds(response.headers.get("retry-after"))
                raise Transient(detail, status=response.status_code, retry_after_s=after)
            if response.status_code == 429:  # overloaded: say so at once, with its wait
                raise self._down(detail, response.headers.get("retry-after"))
            if response.status_code >= 500:
                raise self._down(f"it failed with status {response.status_code}: {detail}")
            # Stays an edge Problem, not a domain error: this client is the gateway's HTTP
            # edge towards a dependency, and a 4xx is an answer that the dependency's own
            # edge already decided (from its domain error or its request checks). It is
            # relayed as it came, whatever its status: 413, 415 and 400 have no domain error,
            # and turning 404/422 into NotFound/InvalidInput only to turn them back into
            # the same status would add a round trip that could only lose something.
            raise Problem(response.status_code, detail, **extra)

        try:
            return await self.policy.acall(attempt)
        except Exhausted as exc:
            last = exc.last
            assert isinstance(last, Transient)
            log.warning("%s unavailable: %s", self.name, last, extra={"dependency": self.name})
            after = None if last.retry_after_s is None else str(int(last.retry_after_s))
            raise self._down(last.reason, after) from last

    async def ready(self) -> str | None:
        """None when the dependency says it is ready, else why not.

        A ready answer also clears the watchdog's verdict: otherwise /readyz could say ready
        (as `talkative serve` waits for) while stories are still refused until the next
        probe, as when the gateway starts before a dependency has loaded its models."""
        try:
            response = await self.http.get("/readyz", timeout=2.0)
        except httpx.HTTPError as exc:
            return f"unreachable ({exc.__class__.__name__})"
        if response.status_code != 200:
            return f"not ready ({response.status_code})"
        self._answered()
        return None


class CaptionClient(ServiceClient):
    async def caption(
        self,
        image: bytes,
        filename: str,
        content_type: str,
        timing: CallTiming | None = None,
        *,
        beam_size: int | None = None,
    ) -> dict[str, Any]:
        response = await self.request(
            "POST",
            "/v1/captions",
            timing,
            files={"image": (filename, image, content_type)},
            data={"beam_size": str(beam_size)} if beam_size is not None else None,
        )
        body: dict[str, Any] = response.json()
        if not body.get("captions"):
            raise self._down("it returned no caption")
        return body


class TextgenClient(ServiceClient):
    async def generate(
        self, payload: dict[str, Any], timing: CallTiming | None = None
    ) -> dict[str, Any]:
        response = await self.request("POST", "/v1/generations", timing, json=payload)
        body: dict[str, Any] = response.json()
        return body

    async def models(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.request("GET", "/v1/models")).json()
        return body
