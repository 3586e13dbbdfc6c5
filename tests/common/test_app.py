"""The shared service edges (talkative_common/app.py) over real HTTP: problems, limits."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, SecretStr

from talkative_common.app import create_service_app
from talkative_common.errors import Unavailable
from talkative_common.logging import JsonFormatter
from talkative_common.observability import Readiness
from talkative_common.problems import Problem
from talkative_common.settings import ServiceSettings
from tests.support.servers import serve

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    word: str = Field(min_length=1, max_length=10)
    times: int = Field(1, ge=1, le=3)


class State:
    ready = False
    release = threading.Event()


def build_app(state: State) -> FastAPI:
    settings = ServiceSettings(max_request_bytes=2048, max_concurrency=1, queue_timeout_s=0.2)

    async def readiness() -> Readiness:
        return Readiness(state.ready, {"model": "ready" if state.ready else "loading"})

    app = create_service_app(
        service="demo",
        title="demo",
        description="demo",
        version="0",
        settings=settings,
        readiness=readiness,
    )

    @app.post("/echo")
    async def echo(body: Echo) -> dict[str, str]:
        return {"text": " ".join([body.word] * body.times)}

    @app.get("/teapot")
    async def teapot() -> None:
        raise Problem(418, "I am a teapot.", title="Teapot")

    @app.get("/down")
    async def down() -> None:
        raise Unavailable("The model server is down.", retry_after_s=7)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.to_thread(state.release.wait, 30)
        return {"status": "done"}

    return app


@pytest.fixture(scope="module")
def state() -> State:
    return State()


@pytest.fixture(scope="module")
def client(state: State) -> Iterator[httpx.Client]:
    with serve(build_app(state)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_validation_errors_name_the_field(client: httpx.Client) -> None:
    body = problem(client.post("/echo", json={"word": "", "times": 9}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"word", "times"}
    assert "word" in body["detail"] and "times" in body["detail"]


def test_not_json_and_wrong_shape(client: httpx.Client) -> None:
    problem(
        client.post("/echo", content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    problem(client.post("/echo", json=["word"]), 422)


def test_raised_problems_keep_status_title_and_headers(client: httpx.Client) -> None:
    assert problem(client.get("/teapot"), 418)["title"] == "Teapot"
    down = client.get("/down")
    problem(down, 503)
    assert down.headers["retry-after"] == "7"


def test_unexpected_errors_are_500_problems_without_internals(client: httpx.Client) -> None:
    body = problem(client.get("/crash"), 500)
    assert "secret" not in json.dumps(body)


def test_unknown_routes_and_methods(client: httpx.Client) -> None:
    problem(client.get("/nowhere"), 404)
    problem(client.get("/echo"), 405)


def test_made_up_methods_share_one_metric_label(client: httpx.Client) -> None:
    """Any token is a valid HTTP method on the wire: 50 invented ones add one series."""
    for i in range(50):
        assert client.request(f"BREW{i}", "/nowhere").status_code in (404, 405)
    text = client.get("/metrics").text
    assert "BREW" not in text
    assert 'method="other",route="unmatched"' in text


def test_body_limit_with_and_without_content_length(client: httpx.Client) -> None:
    problem(
        client.post("/echo", content=b"x" * 4096, headers={"content-type": "application/json"}), 413
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    problem(
        client.post("/echo", content=chunks(), headers={"content-type": "application/json"}), 413
    )


def test_readiness_follows_the_check(client: httpx.Client, state: State) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.headers["retry-after"]
    assert not_ready.json()["checks"] == {"model": "loading"}
    state.ready = True
    assert client.get("/readyz").json() == {"status": "ready", "checks": {"model": "ready"}}


def test_saturated_service_answers_503_and_counts_it(client: httpx.Client, state: State) -> None:
    state.release.clear()
    results: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: results.append(client.get("/slow")))
    slow.start()
    try:
        # Wait until the slow request holds the only slot (the in-flight gauge says so).
        for _ in range(200):
            if 'http_requests_in_flight{service="demo"} 1.0' in client.get("/metrics").text:
                break
            threading.Event().wait(0.05)
        busy = client.get("/teapot")
        problem(busy, 503)
        assert busy.headers["retry-after"]
        assert client.get("/healthz").status_code == 200  # operations bypass the bound
    finally:
        state.release.set()
        slow.join()
    assert results[0].json() == {"status": "done"}
    metrics = client.get("/metrics").text
    assert 'http_requests_rejected_total{service="demo"} 1.0' in metrics
    assert 'route="/slow"' in metrics


def test_server_timing_says_how_long_the_service_worked(client: httpx.Client) -> None:
    # On answers, problems and unknown routes alike (the gateway reads it on all of them).
    for response in (client.get("/healthz"), client.get("/teapot"), client.get("/nope")):
        name, _, duration = response.headers["server-timing"].partition(";dur=")
        assert name == "app" and 0.0 <= float(duration) < 60_000


def test_request_id_is_echoed(client: httpx.Client) -> None:
    assert (
        client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert client.get("/healthz").headers["x-request-id"]


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("talkative", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["msg"] == "hello world"


def test_secrets_never_show_in_settings_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    class WithSecret(ServiceSettings):
        token: SecretStr

    monkeypatch.setenv("TOKEN", "hunter2")
    settings = WithSecret()
    assert settings.token.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def ready_app(settings: ServiceSettings) -> FastAPI:
    """A service app that is always ready, for tests of the edges under other settings."""

    async def ready() -> Readiness:
        return Readiness(True)

    return create_service_app(
        service="demo", title="demo", description="demo", version="0",
        settings=settings, readiness=ready,
    )  # fmt: skip


def test_slow_uploads_hold_no_slot_and_time_out_with_408() -> None:
    """16 clients trickling their bodies: a normal request still gets its answer (the slot
    is taken only once a body has arrived), and each trickler gets 408 at the deadline."""
    import socket

    settings = ServiceSettings(max_concurrency=1, queue_timeout_s=0.5, body_timeout_s=2.0)

    app = ready_app(settings)

    @app.post("/echo")
    async def echo(body: Echo) -> dict[str, str]:
        return {"text": body.word}

    with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        tricklers = []
        for i in range(16):  # each from its own loopback address: under the per-client cap
            s = socket.create_connection(
                ("127.0.0.1", port), timeout=120, source_address=(f"127.0.0.{i + 2}", 0)
            )
            s.sendall(
                b"POST /echo HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            tricklers.append(s)
        try:
            answer = httpx.post(f"{url}/echo", json={"word": "hi"}, timeout=60)
            assert answer.status_code == 200, answer.text
            for s in tricklers:
                head = s.recv(4096).split(b"\r\n", 1)[0]
                assert head == b"HTTP/1.1 408 Request Timeout", head
        finally:
            for s in tricklers:
                s.close()


def test_openapi_says_metrics_are_text(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_full_queue_is_refused_at_once() -> None:
    """One slot, a queue of one: with both taken, the next request gets 503 without waiting
    the (long) queue timeout, and the queued one is served once the slot frees."""
    release = threading.Event()
    settings = ServiceSettings(max_concurrency=1, max_queue=1, queue_timeout_s=600.0)

    app = ready_app(settings)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.to_thread(release.wait, 600)
        return {"status": "done"}

    def metric(client: httpx.Client, line: str) -> bool:
        return line in client.get("/metrics").text

    with serve(app) as url, httpx.Client(base_url=url, timeout=600) as client:
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(client.get("/slow").status_code))
                   for _ in range(2)]  # fmt: skip
        try:
            threads[0].start()
            for _ in range(2000):  # bounded wait on a condition: the slot is held
                if metric(client, 'http_requests_in_flight{service="demo"} 1.0'):
                    break
                threading.Event().wait(0.05)
            threads[1].start()
            for _ in range(2000):  # ... and the queue holds one
                if metric(client, 'http_requests_queued{service="demo"} 1.0'):
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail(client.get("/metrics").text)
            shed = client.get("/slow")
            body = problem(shed, 503)
            assert "queue is full" in body["detail"] and shed.headers["retry-after"] == "2"
        finally:
            release.set()
            for thread in threads:
                thread.join()
        assert answers == [200, 200]
