"""One request id across the stack: the gateway's id (the caller's sane X-Request-ID, or one
it makes) reaches caption-service and textgen-service on every call, and their access log
lines carry it. Real servers over real HTTP (tests/gateway/conftest.py), the log lines as
talkative_common.logging.JsonFormatter writes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from talkative_common.logging import REQUEST_ID_HEADER, JsonFormatter
from tests.support.model_server import wait_until


class Lines(logging.Handler):
    """Formats each record when it is emitted: the request id is a context variable."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.entries: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))

    def ids(self, path: str) -> list[object]:
        return [e["request_id"] for e in self.entries if e.get("path") == path]

    def wait_for(self, path: str, rid: str) -> None:
        """A service writes its access line once its answer is sent: wait for it."""
        wait_until(
            lambda: rid in self.ids(path),
            f"{path} logged with {rid}",
            timeout=30,
            seen=lambda: self.ids(path),
        )


@pytest.fixture()
def access_log() -> Iterator[Lines]:
    logger = logging.getLogger("talkative.access")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def story(
    client: httpx.Client, jpeg: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    response = client.post(
        "/v1/stories",
        files={"image": ("photo.jpg", jpeg, "image/jpeg")},
        data={"model": "tiny_en", "max_new_tokens": "40", "seed": "3"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response


def test_the_callers_request_id_reaches_every_service(
    client: httpx.Client, jpeg: bytes, access_log: Lines
) -> None:
    rid = "story-0001-from-the-caller"
    response = story(client, jpeg, {REQUEST_ID_HEADER: rid})
    assert response.headers[REQUEST_ID_HEADER] == rid
    # the gateway's own line, caption-service's and textgen-service's
    for path in ("/v1/stories", "/v1/captions", "/v1/generations"):
        access_log.wait_for(path, rid)
    assert access_log.ids("/v1/stories") == [rid]


def test_a_request_id_made_by_the_gateway_is_passed_on(
    client: httpx.Client, jpeg: bytes, access_log: Lines
) -> None:
    first = story(client, jpeg).headers[REQUEST_ID_HEADER]
    second = story(client, jpeg, {REQUEST_ID_HEADER: "x" * 65}).headers[REQUEST_ID_HEADER]
    assert len(first) == 32 and len(second) == 32 and first != second  # 65 chars: refused
    for path in ("/v1/stories", "/v1/captions", "/v1/generations"):
        access_log.wait_for(path, first)
        access_log.wait_for(path, second)
