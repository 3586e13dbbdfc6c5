"""Real servers on 127.0.0.1 for the gateway tests: caption-service, textgen-service, gateway.

The model repository holds the tiny char-LSTM of tests/conftest.py twice (as `tiny_en` and,
exported again with language fr, `tiny_fr`) and the tiny captioner of tests/support.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from caption_service.main import create_app as caption_app
from caption_service.settings import CaptionSettings
from gateway_service.main import create_app
from gateway_service.settings import GatewaySettings
from tests.support.captioner import build_captioner
from tests.support.servers import free_port, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gateway_repository(
    tiny_repository: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from training.char_lstm.export import export_run

    repo = tmp_path_factory.mktemp("gateway_models")
    shutil.copytree(tiny_repository / "tiny_en", repo / "tiny_en")
    export_run(tiny_run, repo / "tiny_fr" / "1", name="tiny_fr", language="fr")
    build_captioner(repo)
    return repo


@pytest.fixture(scope="session")
def textgen_url(gateway_repository: Path) -> Iterator[str]:
    from textgen_service.main import create_app as textgen_app
    from textgen_service.settings import TextgenSettings

    settings = TextgenSettings(
        model_repository=gateway_repository, default_model="tiny_en", max_new_tokens_limit=1000
    )
    with serve(textgen_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def caption_url(gateway_repository: Path) -> Iterator[str]:
    with serve(caption_app(CaptionSettings(model_repository=gateway_repository))) as url:
        yield url


def gateway_settings(caption: str, textgen: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "caption_url": caption,
        "textgen_url": textgen,
        "retries": 1,
        "retry_backoff_s": 0.01,
        "retry_after_s": 7,
        "max_new_tokens_limit": 500,
    }
    return GatewaySettings(**(values | overrides))


@pytest.fixture(scope="session")
def gateway_url(caption_url: str, textgen_url: str) -> Iterator[str]:
    with serve(create_app(gateway_settings(caption_url, textgen_url))) as url:
        yield url


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
