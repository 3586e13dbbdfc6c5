"""One retry policy for every client that calls across the network, on tenacity.

Used by the model clients (talkative_common/model_client/remote.py), the gateway's clients to
caption-service and textgen-service (gateway_service/clients.py) and the corpus
downloaders (training/corpora/http.py, ftp.py). Each client says what one attempt is and
turns a failure into `Transient` when another attempt may cure it; the policy decides
the rest, the same way everywhere:

- how many attempts: `retries` after the first (the clients' settings);
- which HTTP statuses are worth another attempt (`statuses`); a 4xx is the caller's
  fault and never is, except 408 and 429 (the server asks to come back);
- how long to wait: exponential backoff from `backoff_s`, doubling, plus up to one
  `backoff_s` of jitter so that many clients' retries spread out, capped at
  `max_backoff_s`; never less than a `Retry-After` the server sent, and a server asking
  for longer than `max_retry_after_s` is given up on at once (its caller passes the
  wait on, or fails) rather than held;
- an optional deadline (seconds left), which no pause outlasts.

`before_sleep` (tenacity's hook) sees each pause before it is taken, so tests count
attempts and read the delays without waiting them out; `sleep` replaces the waiting
itself (the corpus client defers its per-host rate limiter instead of sleeping).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TypeVar

import tenacity
from tenacity import RetryCallState

T = TypeVar("T")

# Statuses that say "not now" rather than "not this": overload, a gateway in front of a
# restarting server, a server that timed out waiting for the request.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CLIENT_MAY_RETRY = frozenset({408, 429})  # the only 4xx that are not the caller's fault


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class Transient(Exception):
    """One attempt failed in a way a later attempt may not: refused, reset, 503...

    `retry_after_s` is what the server asked for (its Retry-After), if anything.
    """

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason, self.status, self.retry_after_s = reason, status, retry_after_s


class Exhausted(Exception):
    """The policy gave up: `last` is the final attempt's error, after `attempts` attempts.

    Also raised after a single attempt when the server asked to wait longer than
    `max_retry_after_s` (`last.retry_after_s` says how long).
    """

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.last, self.attempts = last, attempts


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # attempts after the first
    backoff_s: float = 0.1  # first pause; doubled each retry, plus up to this much jitter
    max_backoff_s: float = 30.0  # no backoff pause is longer (a Retry-After may be)
    statuses: frozenset[int] = RETRY_STATUSES
    max_retry_after_s: float = 600.0
    wait_retry_after: bool = True  # False: the caller passes the server's wait on instead
    before_sleep: Callable[[RetryCallState], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0:
            raise ValueError("retries and backoff_s cannot be negative")
        faults = {s for s in self.statuses if 400 <= s < 500} - _CLIENT_MAY_RETRY
        if faults:
            raise ValueError(f"a 4xx is the caller's fault, never retried: {sorted(faults)}")

    def retryable(self, status: int) -> bool:
        return status in self.statuses

    @property
    def _backoff(self) -> tenacity.wait.wait_base:
        return tenacity.wait_exponential_jitter(
            multiplier=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s
        )

    def _asked(self, exc: BaseException | None) -> float | None:
        if isinstance(exc, Transient) and self.wait_retry_after:
            return exc.retry_after_s
        return None

    def _retrying_kwargs(
        self, retry_on: tuple[type[BaseException], ...], deadline: Callable[[], float] | None
    ) -> dict[str, object]:
        backoff = self._backoff

        def wait(state: RetryCallState) -> float:
            delay = backoff(state)
            exc = state.outcome.exception() if state.outcome is not None else None
            asked = self._asked(exc)
            if asked is not None:
                delay = max(delay, asked)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline()))
            return delay

        def should_retry(exc: BaseException) -> bool:
            asked = self._asked(exc)
            return isinstance(exc, retry_on) and (asked is None or asked <= self.max_retry_after_s)

        kwargs: dict[str, object] = {
            "stop": tenacity.stop_after_attempt(self.retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(should_retry),
        }
        if self.before_sleep is not None:
            kwargs["before_sleep"] = self.before_sleep
        return kwargs

    def call(
        self,
        attempt: Callable[[], T],
        *,
        retry_on: tuple[type[BaseException], ...] = (Transient,),
        sleep: Callable[[float], None] | None = None,
    ) -> T:
        """`attempt()` until it returns, fails with an error not in `retry_on`, or the
        policy gives up (`Exhausted`)."""
        kwargs = self._retrying_kwargs(retry_on, None)
        if sleep is not None:
            kwargs["sleep"] = sleep
        retrying = tenacity.Retrying(**kwargs)  # type: ignore[arg-type]
        try:
            return retrying(attempt)
        except tenacity.RetryError as exc:
            raise _exhausted(exc) from exc.last_attempt.exception()
        except retry_on as exc:  # not retried: the server asked for too long a wait
            raise Exhausted(exc, retrying.statistics.get("attempt_number", 1)) from exc

    async def acall(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        retry_on: tuple[type[BaseException], ...] = (Transient,),
        deadline: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> T:
        """As `call`, in the event loop; `deadline()` gives the seconds left, and no pause
        outlasts them (the attempt itself decides what to do when none are left)."""
        kwargs = self._retrying_kwargs(retry_on, deadline)
        if sleep is not None:
            kwargs["sleep"] = sleep
        retrying = tenacity.AsyncRetrying(**kwargs)  # type: ignore[arg-type]
        try:
            return await retrying(attempt)
        except tenacity.RetryError as exc:
            raise _exhausted(exc) from exc.last_attempt.exception()
        except retry_on as exc:
            raise Exhausted(exc, retrying.statistics.get("attempt_number", 1)) from exc


def _exhausted(exc: tenacity.RetryError) -> Exhausted:
    last = exc.last_attempt.exception()
    assert last is not None  # tenacity retries on exceptions only here
    return Exhausted(last, exc.last_attempt.attempt_number)
