"""The production path end to end: gateway -> services -> TF Serving (gRPC), and its outages.

caption-service and textgen-service use the gRPC backend against `talkative
model-server` (TF Serving's protocol on 127.0.0.1, serving the same SavedModels, as
a child process). When the model server goes down (stopped) or stops answering
(frozen with SIGSTOP), the gateway
answers 503 with Retry-After, never 500, and tells stories again once it is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from caption_service.main import create_app as caption_app
from caption_service.settings import CaptionSettings
from gateway_service.main import create_app
from tests.gateway.conftest import gateway_settings
from tests.support.model_server import ModelServerProcess, serve_repository
from tests.support.servers import serve
from textgen_service.main import create_app as textgen_app
from textgen_service.settings import TextgenSettings

pytestmark = pytest.mark.slow


def _grpc(server: ModelServerProcess) -> dict[str, Any]:
    return {
        "model_backend": "grpc",
        "model_server_host": "127.0.0.1",
        "model_server_grpc_port": server.grpc_port,
        "model_server_rest_port": server.rest_port,
        "model_retries": 1,
        "model_retry_backoff_s": 0.05,
        "model_timeout_s": 3.0,
    }


@pytest.fixture(scope="module")
def stack(
    gateway_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ModelServerProcess]]:
    server = serve_repository(gateway_repository, tmp_path_factory.mktemp("outage")).start()
    caption = CaptionSettings(model_repository=gateway_repository, **_grpc(server))
    textgen = TextgenSettings(
        model_repository=gateway_repository, default_model="tiny_en", **_grpc(server)
    )
    try:
        with (
            serve(caption_app(caption)) as caption_url,
            serve(textgen_app(textgen)) as textgen_url,
            serve(create_app(gateway_settings(caption_url, textgen_url))) as url,
        ):
            yield url, server
    finally:
        server.stop()


def _story(url: str, jpeg: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/stories",
        files={"image": ("photo.jpg", jpeg, "image/jpeg")},
        data={"model": "tiny_en", "max_new_tokens": "40", "seed": "3"},
        timeout=120,
    )


def _is_503_problem(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and int(response.headers["retry-after"]) > 0
        and response.headers["content-type"].startswith("application/problem+json")
    )


def test_model_server_down_gives_503_then_stories_again(
    stack: tuple[str, ModelServerProcess], jpeg: bytes
) -> None:
    url, server = stack
    first = _story(url, jpeg)
    assert first.status_code == 200, first.text
    server.stop()
    try:
        down = _story(url, jpeg)
        assert _is_503_problem(down), down.text
        assert "unavailable" in down.json()["detail"]
    finally:
        server.start()  # same ports, as a restarted container
    # gRPC reconnects with a capped backoff: a few 503s may come before the recovery.
    statuses = []
    for _ in range(50):
        response = _story(url, jpeg)
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert _is_503_problem(response), response.text
    assert statuses[-1] == 200, statuses
    assert response.json()["story"] == first.json()["story"]  # same seed, same story


def test_model_server_hanging_gives_503_then_stories_again(
    stack: tuple[str, ModelServerProcess], jpeg: bytes
) -> None:
    url, server = stack
    server.hold()
    try:
        slow = _story(url, jpeg)
    finally:
        server.release()
    assert _is_503_problem(slow), slow.text
    assert _story(url, jpeg).status_code == 200
