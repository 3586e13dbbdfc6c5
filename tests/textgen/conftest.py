from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings


@pytest.fixture(scope="module")
def textgen_url(tiny_repository: Path) -> Iterator[str]:
    settings = TextgenSettings(
        model_repository=tiny_repository,
        default_model="tiny_en",
        max_prompt_chars=300,
        max_new_tokens_limit=500,
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture()
def client(textgen_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=textgen_url, timeout=60) as c:
        yield c
