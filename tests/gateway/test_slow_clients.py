"""Slow clients against a real gateway: 16 sockets trickling their uploads do not delay a
normal story, and one address cannot hold more than its share of uploads."""

from __future__ import annotations

import select
import socket

import httpx

from gateway_service.main import create_app
from tests.gateway.conftest import gateway_settings
from tests.support.servers import serve

TRICKLERS = 16


def _head(length: int) -> bytes:
    return (
        b"POST /v1/stories HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n--xyz\r\n"
    )


def _answered(s: socket.socket) -> bool:
    readable, _, _ = select.select([s], [], [], 0)
    return bool(readable)


def test_trickling_uploads_do_not_delay_a_story(
    caption_url: str, textgen_url: str, png: bytes
) -> None:
    # One slot, and a body deadline far beyond the test: the story can only succeed if
    # the tricklers hold no slot, and they are still unanswered when it does.
    settings = gateway_settings(
        caption_url, textgen_url, max_concurrency=1, body_timeout_s=600, max_uploads_per_client=4
    )
    with serve(create_app(settings)) as url:
        port = int(url.rsplit(":", 1)[1])
        tricklers = []
        try:
            for i in range(TRICKLERS):  # each from its own loopback address
                s = socket.create_connection(
                    ("127.0.0.1", port), timeout=60, source_address=(f"127.0.0.{i + 2}", 0)
                )
                s.sendall(_head(1_000_000))
                tricklers.append(s)
            for s in tricklers:  # one more byte each: they are all mid-upload
                s.sendall(b"C")
            with httpx.Client(base_url=url, timeout=300) as client:
                answer = client.post(
                    "/v1/stories",
                    files={"image": ("p.png", png, "image/png")},
                    data={"model": "tiny_en", "max_new_tokens": "20"},
                )
            assert answer.status_code == 200, answer.text
            waiting = [i for i, s in enumerate(tricklers) if not _answered(s)]
            assert waiting == list(range(TRICKLERS)), "a trickler was answered before the story"

            # A fifth upload from an address already sending four is refused at once.
            for _ in range(4):
                s = socket.create_connection(
                    ("127.0.0.1", port), timeout=60, source_address=("127.0.0.99", 0)
                )
                s.sendall(_head(1_000_000))
                tricklers.append(s)
            seen = b""
            for _ in range(100):  # bounded: until the server has counted the four
                with socket.create_connection(
                    ("127.0.0.1", port), timeout=60, source_address=("127.0.0.99", 0)
                ) as fifth:
                    fifth.sendall(_head(1_000_000))
                    readable, _, _ = select.select([fifth], [], [], 30.0)
                    seen = fifth.recv(4096) if readable else b"(no answer yet)"
                if seen.startswith(b"HTTP/1.1 429"):
                    break
            assert seen.startswith(b"HTTP/1.1 429"), seen
            assert b"application/problem+json" in seen
        finally:
            for s in tricklers:
                s.close()
