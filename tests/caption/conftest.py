"""caption-service on 127.0.0.1, serving the test captioner of tests/support; the shared
`client` fixture (tests/conftest.py) talks to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caption_service.main import create_app
from caption_service.settings import CaptionSettings
from tests.support.captioner import build_captioner
from tests.support.servers import serve


@pytest.fixture(scope="session")
def caption_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("caption_models")
    build_captioner(repo)
    return repo


@pytest.fixture(scope="module")
def service_url(caption_repository: Path) -> Iterator[str]:
    settings = CaptionSettings(
        model_repository=caption_repository, max_request_bytes=2_000_000, max_image_pixels=4_000_000
    )
    with serve(create_app(settings)) as url:
        yield url
