"""Fixtures of the gateway tests. The real servers on 127.0.0.1 (caption-service,
textgen-service, gateway: `caption_url`, `textgen_url`, `gateway_url`) are shared with
other test folders, in tests/support/stack.py.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.servers import free_port
from tests.support.stack import gateway_settings

__all__ = ["gateway_settings"]  # the gateway tests import it from here

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def down_url() -> str:
    """A loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def hanging_server() -> Iterator[str]:
    """Accepts connections, reads the request, never answers: a dependency that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def photo_bytes(kind: str = "JPEG", size: tuple[int, int] | None = None) -> bytes:
    """A real photo (scikit-image's chelsea the cat), encoded as asked."""
    from skimage import data

    image = Image.fromarray(data.chelsea())
    if size:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return photo_bytes("JPEG")


@pytest.fixture(scope="session")
def png() -> bytes:
    return photo_bytes("PNG", (200, 150))
