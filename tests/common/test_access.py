"""Public-deployment controls of talkative_common/app.py over real HTTP: API keys, per-client rate
limits, the CORS allow-list and origin check, /metrics on its own port, the header
deadline and the per-client upload cap."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from talkative_common.access import hash_key, new_key
from talkative_common.app import create_service_app
from talkative_common.connections import header_deadline_protocol
from talkative_common.observability import Readiness
from talkative_common.settings import ServiceSettings
from tests.common.test_app import problem
from tests.support.redis_server import RedisServer
from tests.support.servers import free_port, serve

KEY, OTHER_KEY = new_key(), new_key()


def demo_app(settings: ServiceSettings) -> FastAPI:
    async def ready() -> Readiness:
        return Readiness(True)

    app = create_service_app(
        service="demo", title="demo", description="demo", version="0",
        settings=settings, readiness=ready, open_paths=[r"/v1/page"],
    )  # fmt: skip

    @app.post("/v1/work")
    async def work() -> dict[str, str]:
        return {"status": "done"}

    @app.get("/v1/page")
    async def page() -> dict[str, str]:
        return {"status": "page"}

    @app.post("/v1/page")
    async def post_page() -> dict[str, str]:
        return {"status": "posted"}

    return app


@contextmanager
def running(source: str = "127.0.0.1", **settings: Any) -> Iterator[httpx.Client]:
    """A demo service with `settings`, and a client that connects from `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    with (
        serve(demo_app(ServiceSettings(**settings))) as url,
        httpx.Client(base_url=url, timeout=60, transport=transport) as client,
    ):
        yield client


def test_everything_is_open_by_default() -> None:
    with running() as client:
        assert client.post("/v1/work").status_code == 200
        assert "access-control-allow-origin" not in client.get("/v1/page").headers


def test_api_keys_are_checked_against_their_hashes() -> None:
    with running(api_key_hashes=f"{hash_key(KEY)},{hash_key(OTHER_KEY)}") as client:
        missing = client.post("/v1/work")
        assert "missing" in problem(missing, 401)["detail"]
        assert missing.headers["www-authenticate"] == "X-API-Key"
        wrong = client.post("/v1/work", headers={"X-API-Key": KEY + "x"})
        assert "not valid" in problem(wrong, 401)["detail"]
        for key in (KEY, OTHER_KEY):
            assert client.post("/v1/work", headers={"X-API-Key": key}).status_code == 200
        # Probes, metrics, the API's documentation and the open GET paths need no key ...
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/page"):
            assert client.get(path).status_code == 200, path
        # ... but an open path is open for reading only.
        problem(client.post("/v1/page"), 401)
        assert KEY not in client.get("/metrics").text


def test_key_hashes_must_be_sha256_hex() -> None:
    with pytest.raises(ValidationError, match="64 lowercase hex"):
        ServiceSettings(api_key_hashes=KEY)  # the key itself, not its hash


def test_rate_limit_per_address_gives_429_with_retry_after() -> None:
    with running(rate_limit="3/minute") as client:
        assert [client.post("/v1/work").status_code for _ in range(3)] == [200] * 3
        over = client.post("/v1/work")
        body = problem(over, 429)
        assert "3 per 1 minute" in body["detail"]
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert client.get("/healthz").status_code == 200  # probes are never limited
        # Another address has its own budget.
        url = str(client.base_url)
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, transport=other) as elsewhere:
            assert elsewhere.post("/v1/work").status_code == 200


def test_rate_limit_per_key() -> None:
    keys = f"{hash_key(KEY)},{hash_key(OTHER_KEY)}"
    with running(api_key_hashes=keys, rate_limit="2/minute;100/hour") as client:
        first = {"X-API-Key": KEY}
        assert [client.post("/v1/work", headers=first).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # Same address, another key: its own budget. No key at all: 401, not 429.
        assert client.post("/v1/work", headers={"X-API-Key": OTHER_KEY}).status_code == 200
        problem(client.post("/v1/work"), 401)


def test_bad_rate_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="not a rate"):
        ServiceSettings(rate_limit="lots")


def test_cors_allow_list_and_foreign_origins() -> None:
    allowed = "https://talkative.example"
    with running(cors_origins=allowed) as client:
        preflight = client.options(
            "/v1/work",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == allowed
        assert preflight.headers["x-content-type-options"] == "nosniff"
        ok = client.post("/v1/work", headers={"Origin": allowed})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        evil = "https://evil.example"
        refused = client.options(
            "/v1/work", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in refused.headers
        # A cross-site form POST is a "simple" request: no preflight, so refuse the work.
        body = problem(client.post("/v1/work", headers={"Origin": evil}), 403)
        assert evil in body["detail"]
        # The site's own page, curl and servers (no Origin) pass.
        own = f"http://{client.base_url.host}:{client.base_url.port}"
        assert client.post("/v1/work", headers={"Origin": own}).status_code == 200
        assert client.post("/v1/work").status_code == 200
        assert client.get("/v1/page", headers={"Origin": evil}).status_code == 200


def test_cors_origins_are_origins() -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        ServiceSettings(cors_origins="https://talkative.example/page")


def test_metrics_on_their_own_port() -> None:
    port = free_port()
    with running(metrics_port=port) as client:
        assert client.post("/v1/work").status_code == 200
        problem(client.get("/metrics"), 404)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert scraped.status_code == 200
        assert 'http_requests_total{method="POST",route="/v1/work"' in scraped.text
    with pytest.raises(httpx.ConnectError):  # stopped with the service
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def _closed_or_answered(s: socket.socket, trickle: bytes, turns: int = 600) -> bytes | None:
    """Send `trickle` a byte at a time until the server answers or closes (what it sent,
    b"" for a close), or None if it still listens after `turns` bytes."""
    for i in range(turns):
        s.sendall(trickle[i % len(trickle) : i % len(trickle) + 1])
        readable, _, _ = select.select([s], [], [], 0.2)
        if readable:
            try:
                return s.recv(4096)
            except ConnectionResetError:
                return b""
    return None


def test_a_request_head_sent_too_slowly_is_cut_off() -> None:
    app = demo_app(ServiceSettings())
    with serve(app, http=header_deadline_protocol(1.0)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
            slow.sendall(b"GET /v1/page HTTP/1.1\r\nHost: demo\r\n")
            seen = _closed_or_answered(slow, b"X-Padding: aaaa\r\n")
            assert seen == b"", f"a header sent one byte at a time was not cut off: {seen!r}"
        # A normal client, kept alive across two requests, is not affected.
        with httpx.Client(base_url=url) as client:
            assert client.get("/v1/page").status_code == 200
            assert client.get("/v1/page").status_code == 200


def test_one_address_may_send_only_so_many_bodies_at_once() -> None:
    with running(max_uploads_per_client=2, body_timeout_s=600) as client:
        port = client.base_url.port
        assert port is not None
        head = b"POST /v1/work HTTP/1.1\r\nHost: demo\r\nContent-Length: 100\r\n\r\n{"
        holders = []
        try:
            for _ in range(2):
                s = socket.create_connection(("127.0.0.1", port), timeout=60)
                s.sendall(head)
                holders.append(s)
            answers = []
            for _ in range(100):  # bounded: until the cap is seen to hold
                with socket.create_connection(("127.0.0.1", port), timeout=60) as third:
                    third.sendall(head)
                    readable, _, _ = select.select([third], [], [], 30.0)
                    answers.append(third.recv(4096) if readable else b"(nothing yet)")
                    if answers[-1].startswith(b"HTTP/1.1 429"):
                        break
            else:
                pytest.fail(f"no 429 for a third upload; saw {answers[-3:]}")
            assert b"retry-after: 1" in answers[-1].lower()
            # A client whose upload is quick reads its 429 (the body is drained first),
            # rather than a connection reset.
            refused = client.post("/v1/work", content=b"{}")
            assert problem(refused, 429)["detail"].startswith("Your address is already sending")
            # Another address is not held back by this one's uploads.
            other = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(base_url=str(client.base_url), transport=other) as elsewhere:
                assert elsewhere.post("/v1/work", content=b"{}").status_code == 200
        finally:
            for s in holders:
                s.close()


def test_rate_limit_counts_are_shared_through_redis(redis_server: RedisServer) -> None:
    """Two replicas with one Redis (db 15, this test's alone): one client's requests
    count together, whichever replica answers them."""
    storage = redis_server.url.rsplit("/", 1)[0] + "/15"
    settings = {"rate_limit": "3/minute", "rate_limit_storage": storage}
    with running(**settings) as first, running(**settings) as second:
        assert first.post("/v1/work").status_code == 200
        assert second.post("/v1/work").status_code == 200
        assert first.post("/v1/work").status_code == 200
        over = second.post("/v1/work")
        assert problem(over, 429)["detail"].startswith("Too many requests")
        assert int(over.headers["retry-after"]) >= 1
