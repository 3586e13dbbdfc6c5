"""The shared retry policy (talkative_common/retries.py) against a real loopback HTTP server.

The server answers from a script; the tests count the requests it got and read the
pauses the policy asked tenacity for (its `before_sleep` hook), with the waiting itself
replaced, so nothing here sleeps or measures the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from tenacity import RetryCallState

from talkative_common.retries import (
    Exhausted,
    RetryPolicy,
    Transient,
    retry_after_seconds,
)
from tests.support.servers import serve


@dataclass
class Script:
    """ASGI app: answers each request with the next (status, headers) of `answers`, the
    last one again once they run out; counts the requests."""

    answers: list[tuple[int, dict[str, str]]]
    hits: int = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        status, headers = self.answers[min(self.hits, len(self.answers) - 1)]
        self.hits += 1
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"ok" if status < 400 else b"no"})


@dataclass
class Pauses:
    """What the policy asked to wait, before each retry."""

    delays: list[float] = field(default_factory=list)

    def hook(self, state: RetryCallState) -> None:
        assert state.next_action is not None
        self.delays.append(state.next_action.sleep)

    def no_wait(self, seconds: float) -> None:
        """Stands in for the sleep: the delay is recorded by the hook, not waited."""


@pytest.fixture()
def script() -> Script:
    return Script([(200, {})])


@pytest.fixture()
def url(script: Script) -> Iterator[str]:
    with serve(script) as base:
        yield base


def fetch(client: httpx.Client, url: str, policy: RetryPolicy) -> httpx.Response:
    """One attempt, as every client classifies it: retryable statuses are Transient,
    other 4xx are the caller's fault and raise at once."""
    response = client.get(url)
    if policy.retryable(response.status_code):
        after = retry_after_seconds(response.headers.get("retry-after"))
        raise Transient(f"HTTP {response.status_code}", status=response.status_code,
                        retry_after_s=after)  # fmt: skip
    response.raise_for_status()
    return response


def test_attempts_are_the_retries_plus_one_and_backoff_doubles_within_bounds(
    script: Script, url: str
) -> None:
    script.answers = [(503, {})]
    pauses = Pauses()
    policy = RetryPolicy(retries=4, backoff_s=1.0, max_backoff_s=5.0, before_sleep=pauses.hook)
    with httpx.Client() as client, pytest.raises(Exhausted) as caught:
        policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert script.hits == 5 and caught.value.attempts == 5
    assert isinstance(caught.value.last, Transient) and caught.value.last.status == 503
    assert len(pauses.delays) == 4  # none after the last attempt
    for n, delay in enumerate(pauses.delays):
        low = min(5.0, 2.0**n)  # doubling from backoff_s, capped
        assert low <= delay <= min(5.0, low + 1.0), (n, delay)  # plus at most one backoff


def test_success_after_transient_failures_stops_retrying(script: Script, url: str) -> None:
    script.answers = [(502, {}), (504, {}), (200, {})]
    pauses = Pauses()
    policy = RetryPolicy(retries=5, backoff_s=0.5, before_sleep=pauses.hook)
    with httpx.Client() as client:
        response = policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert response.status_code == 200 and script.hits == 3 and len(pauses.delays) == 2


def test_retry_after_is_honoured(script: Script, url: str) -> None:
    script.answers = [(429, {"Retry-After": "7"}), (200, {})]
    pauses = Pauses()
    policy = RetryPolicy(retries=3, backoff_s=0.1, max_backoff_s=1.0, before_sleep=pauses.hook)
    with httpx.Client() as client:
        response = policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert response.status_code == 200 and script.hits == 2
    assert pauses.delays == [7.0]  # the server's wait, though longer than any backoff


def test_a_retry_after_beyond_the_limit_is_given_up_on_at_once(script: Script, url: str) -> None:
    script.answers = [(503, {"Retry-After": "900"})]
    pauses = Pauses()
    policy = RetryPolicy(retries=3, max_retry_after_s=600, before_sleep=pauses.hook)
    with httpx.Client() as client, pytest.raises(Exhausted) as caught:
        policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert script.hits == 1 and caught.value.attempts == 1 and pauses.delays == []
    assert isinstance(caught.value.last, Transient) and caught.value.last.retry_after_s == 900


def test_the_caller_may_pass_retry_after_on_instead_of_waiting(script: Script, url: str) -> None:
    script.answers = [(503, {"Retry-After": "30"})]
    pauses = Pauses()
    policy = RetryPolicy(retries=2, backoff_s=0.2, wait_retry_after=False, before_sleep=pauses.hook)
    with httpx.Client() as client, pytest.raises(Exhausted) as caught:
        policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert script.hits == 3 and all(d <= 0.2 * 2 + 0.2 for d in pauses.delays)
    assert isinstance(caught.value.last, Transient) and caught.value.last.retry_after_s == 30


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_no_retry_on_4xx(script: Script, url: str, status: int) -> None:
    script.answers = [(status, {"Retry-After": "1"})]
    pauses = Pauses()
    policy = RetryPolicy(retries=3, before_sleep=pauses.hook)
    with httpx.Client() as client, pytest.raises(httpx.HTTPStatusError):
        policy.call(lambda: fetch(client, url, policy), sleep=pauses.no_wait)
    assert script.hits == 1 and pauses.delays == []


def test_a_policy_that_would_retry_a_4xx_is_refused() -> None:
    with pytest.raises(ValueError, match="caller's fault"):
        RetryPolicy(statuses=frozenset({404, 503}))
    assert RetryPolicy(statuses=frozenset({408, 429})).retryable(429)


def test_async_pauses_never_outlast_the_deadline(script: Script, url: str) -> None:
    script.answers = [(503, {})]
    pauses = Pauses()
    policy = RetryPolicy(retries=3, backoff_s=10.0, max_backoff_s=60.0, before_sleep=pauses.hook)
    left = {1: 2.5, 2: 1.0, 3: 0.0}  # seconds left after each attempt, as a deadline would say

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:

            async def attempt() -> httpx.Response:
                response = await client.get(url)
                if policy.retryable(response.status_code):
                    raise Transient(f"HTTP {response.status_code}", status=response.status_code)
                return response

            async def no_wait(seconds: float) -> None:
                pass

            with pytest.raises(Exhausted) as caught:
                await policy.acall(
                    attempt, deadline=lambda: left.get(script.hits, 0.0), sleep=no_wait
                )
            assert caught.value.attempts == 4

    asyncio.run(scenario())
    assert script.hits == 4 and pauses.delays == [2.5, 1.0, 0.0]


def test_transport_failures_are_retried_when_the_client_says_so() -> None:
    """Nothing listens on the port: every attempt is refused, each one counted."""
    from tests.support.servers import free_port

    url, tries = f"http://127.0.0.1:{free_port()}/", []
    pauses = Pauses()
    policy = RetryPolicy(retries=2, backoff_s=0.01, before_sleep=pauses.hook)

    def attempt() -> httpx.Response:
        tries.append(1)
        try:
            return httpx.get(url)
        except httpx.ConnectError as exc:
            raise Transient(f"cannot connect ({type(exc).__name__})") from exc

    with pytest.raises(Exhausted) as caught:
        policy.call(attempt, sleep=pauses.no_wait)
    assert len(tries) == 3 and caught.value.attempts == 3 and len(pauses.delays) == 2
    assert "cannot connect" in str(caught.value.last)
