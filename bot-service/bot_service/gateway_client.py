"""GatewayClient: the gateway's public API as the bot uses it (POST /v1/stories, GET card).

One attempt per call, no retry loop: a failure the gateway may get over is raised as
`GatewayUnavailable` (with its Retry-After), and the bot pauses and tries again from its
durable schedule (bot.py), which outlives a restart and holds no thread; retrying here
as well would hide the outage from that pause and multiply the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from talkative_common.retries import retry_after_seconds


class GatewayUnavailable(Exception):
    """Down, overloaded or too slow: retry after `retry_after_s`; the mention is not at fault."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class GatewayRejected(Exception):
    """4xx: the gateway refused this image or these options for good (problem+json detail)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


@dataclass
class Story:
    id: str
    caption: str
    story: str
    seed: int
    model: str
    card_url: str
    timings: dict[str, Any] = field(default_factory=dict)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return retry_after_seconds(value)  # an HTTP-date, as RFC 9110 also allows


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or response.reason_phrase)
    except ValueError:
        return response.reason_phrase


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 120.0,
        client: httpx.Client | None = None,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.client = client or httpx.Client(timeout=timeout_s)
        if api_key:
            self.client.headers["X-API-Key"] = api_key

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"gateway unreachable: {exc.__class__.__name__}") from exc
        # 401: our key is missing or revoked, which is no fault of the mention: keep it and
        # retry later, so fixing the key loses nothing.
        if response.status_code in (401, 429, 503) or response.status_code >= 500:
            raise GatewayUnavailable(
                f"gateway answered {response.status_code}: {_detail(response)}",
                _retry_after(response),
            )
        if response.status_code >= 400:
            raise GatewayRejected(response.status_code, _detail(response))
        return response

    def create_story(
        self,
        image: bytes,
        content_type: str,
        *,
        seed: int | None = None,
        model: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        style: str | None = None,
    ) -> Story:
        options = {
            "seed": seed,
            "model": model,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "style": style,
        }
        data = {k: str(v) for k, v in options.items() if v is not None}
        suffix = content_type.rsplit("/", 1)[-1]
        response = self._send(
            "POST",
            urljoin(self.base_url, "v1/stories"),
            files={"image": (f"image.{suffix}", image, content_type)},
            data=data,
        )
        try:
            body = response.json()
            return Story(
                id=str(body["id"]),
                caption=str(body["caption"]),
                story=str(body["story"]),
                seed=int(body["seed"]),
                model=str(body["model"]),
                card_url=str(body["card_url"]),
                timings=dict(body.get("timings") or {}),
            )
        except (ValueError, KeyError, TypeError) as exc:
            # A gateway answering 200 with the wrong shape is a gateway fault: retry later.
            raise GatewayUnavailable(f"gateway sent an unexpected story: {exc}") from exc

    def fetch_card(self, story: Story) -> tuple[bytes, str]:
        response = self._send("GET", urljoin(self.base_url, story.card_url))
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not content_type.startswith("image/") or not response.content:
            raise GatewayUnavailable(f"gateway sent a card of type {content_type or 'unknown'}")
        return response.content, content_type

    def ready(self) -> bool:
        try:
            return self.client.get(urljoin(self.base_url, "readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.client.close()
