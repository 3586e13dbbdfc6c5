"""textgen-service on 127.0.0.1 for the tests of this folder: tiny_en, unless a test module
overrides `textgen_settings`; the shared `client` fixture (tests/conftest.py) talks to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings


@pytest.fixture(scope="module")
def textgen_settings(tiny_repository: Path) -> TextgenSettings:
    return TextgenSettings(
        model_repository=tiny_repository,
        default_model="tiny_en",
        max_prompt_chars=300,
        max_new_tokens_limit=500,
    )


@pytest.fixture(scope="module")
def service_url(textgen_settings: TextgenSettings) -> Iterator[str]:
    with serve(create_app(textgen_settings)) as url:
        yield url
