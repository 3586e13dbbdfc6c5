"""A dependency down or hanging: 503 with Retry-After, never a 500 and never a hang."""

from __future__ import annotations

import httpx

from gateway_service.main import build_chain, create_app
from tests.gateway.conftest import gateway_settings, hanging_server
from tests.gateway.test_api import assert_problem
from tests.support.servers import serve


def post_story(url: str, png: bytes) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120) as c:
        return c.post(
            "/v1/stories", files={"image": ("p.png", png, "image/png")}, data={"model": "tiny_en"}
        )


def test_caption_service_down(down_url: str, textgen_url: str, png: bytes) -> None:
    with serve(create_app(gateway_settings(down_url, textgen_url))) as url:
        response = post_story(url, png)
        body = assert_problem(response, 503, "caption-service", "cannot connect")
        assert response.headers["retry-after"] == "7"
        assert body["instance"] == "/v1/stories"
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503
        assert "unreachable" in ready.json()["checks"]["caption-service"]


def test_textgen_service_down(down_url: str, png: bytes) -> None:
    with serve(create_app(gateway_settings(down_url, down_url))) as url:
        response = post_story(url, png)
        assert_problem(response, 503, "textgen-service")
        assert response.headers["retry-after"] == "7"
        models = httpx.get(url + "/v1/models")
        assert_problem(models, 503, "textgen-service")


def test_caption_service_hanging(textgen_url: str, png: bytes) -> None:
    with hanging_server() as hung:
        settings = gateway_settings(hung, textgen_url, caption_timeout_s=0.5)
        with serve(create_app(settings)) as url:
            response = post_story(url, png)
    assert_problem(response, 503, "caption-service", "no answer within 0.5 s")
    assert response.headers["retry-after"] == "7"


def test_textgen_service_hanging(png: bytes) -> None:
    with hanging_server() as hung:
        settings = gateway_settings(hung, hung, textgen_timeout_s=0.5)
        with serve(create_app(settings)) as url:
            response = post_story(url, png)
    assert_problem(response, 503, "textgen-service", "no answer")


def test_saturated_gateway_answers_503_at_once(textgen_url: str, png: bytes) -> None:
    """One slot, held by a request stuck on a hanging caption-service: the next one is refused."""
    import threading
    import time

    with hanging_server() as hung:
        settings = gateway_settings(
            hung, textgen_url, caption_timeout_s=2, max_concurrency=1, queue_timeout_s=0.1
        )
        with serve(create_app(settings)) as url:
            first: list[httpx.Response] = []
            stuck = threading.Thread(target=lambda: first.append(post_story(url, png)))
            stuck.start()
            while not _in_flight(url):
                time.sleep(0.01)
            second = post_story(url, png)
            stuck.join()
    assert_problem(second, 503, "capacity")
    assert second.headers["retry-after"] == "2"
    assert_problem(first[0], 503, "caption-service")


def _in_flight(url: str) -> bool:
    metrics = httpx.get(url + "/metrics").text
    return 'http_requests_in_flight{service="gateway"} 1.0' in metrics


def test_a_ready_answer_lifts_the_watchdogs_verdict() -> None:
    """The watchdog found a dependency down (as when the gateway starts before it has loaded
    its models); the gateway's /readyz then finds it ready. Stories must go through from
    then on, not only after the next probe: `talkative serve` says ready on /readyz."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    state = {"ready": False}
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        return JSONResponse({}, status_code=200 if state["ready"] else 503)

    async def check(url: str) -> list[tuple[str | None, bool]]:
        chain = build_chain(gateway_settings(url, url))  # the clients the gateway builds
        client = chain.captions
        try:
            client.down.set()  # the watchdog's verdict
            seen = [(await client.ready(), client.down.is_set())]
            state["ready"] = True
            seen.append((await client.ready(), client.down.is_set()))
            return seen
        finally:
            await chain.close()

    with serve(app) as url:
        # Loading (503): still down. Ready: no longer down.
        assert asyncio.run(check(url)) == [("not ready (503)", True), (None, False)]
