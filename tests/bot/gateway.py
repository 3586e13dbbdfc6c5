"""The real gateway for the bot tests, with real caption-service and textgen-service behind it.

The services run the test captioner (tests/support/captioner.py) and the tiny
char-LSTM, so stories are real but quick. Two test levers, neither of which
changes what the gateway does: a pass-through that counts the bot's calls, and a
switch that cuts the gateway's route to caption-service, so the gateway itself
answers 503 + Retry-After, as in a real outage.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from tests.support.model_server import wait_until


class CountingGateway:
    """ASGI pass-through in front of the real gateway app: counts stories and cards asked."""

    def __init__(self, app: Any, dead_url: str) -> None:
        self.app, self.dead_url = app, dead_url
        self.story_calls = 0
        self.card_calls = 0
        self.url = ""
        self._caption_url: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "POST" and scope["path"] == "/v1/stories":
                self.story_calls += 1
            elif scope["path"].endswith("/card.png"):
                self.card_calls += 1
        await self.app(scope, receive, send)

    @property
    def down(self) -> bool:
        return self._caption_url is not None

    @down.setter
    def down(self, value: bool) -> None:
        """Cut (or restore) the gateway's connection to caption-service.

        Restoring returns once the gateway's watchdog has seen caption-service answer
        again: until its next probe it still refuses calls (503), as it would in a real
        outage, and a test that runs the bot at once would race that probe.
        """
        captions = self.app.state.chain.captions
        if value and self._caption_url is None:
            self._caption_url, captions.http.base_url = str(captions.http.base_url), self.dead_url
        elif not value and self._caption_url is not None:
            captions.http.base_url, self._caption_url = self._caption_url, None
            wait_until(
                lambda: not captions.down.is_set(),
                "the gateway's watchdog to find caption-service answering again",
                timeout=60,
                seen=lambda: f"watchdog still marks {captions.name} down",
            )
