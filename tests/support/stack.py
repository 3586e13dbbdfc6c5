"""The three services on 127.0.0.1, once per test session (a plugin of tests/conftest.py).

The gateway tests (tests/gateway) and the OpenAPI contract tests (tests/api_contract)
share these servers. The model repository holds the tiny char-LSTM of tests/conftest.py
twice (as `tiny_en` and, exported again with language fr, `tiny_fr`) and the tiny
captioner of tests/support.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.servers import serve

if TYPE_CHECKING:
    from gateway_service.settings import GatewaySettings
    from textgen_service.settings import TextgenSettings


@pytest.fixture(scope="session")
def gateway_repository(
    tiny_repository: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from tests.support.captioner import build_captioner
    from training.char_lstm.export import export_run

    repo = tmp_path_factory.mktemp("gateway_models")
    shutil.copytree(tiny_repository / "tiny_en", repo / "tiny_en")
    export_run(tiny_run, repo / "tiny_fr" / "1", name="tiny_fr", language="fr")
    build_captioner(repo)
    return repo


def textgen_settings(repository: Path) -> TextgenSettings:
    from textgen_service.settings import TextgenSettings

    return TextgenSettings(
        model_repository=repository, default_model="tiny_en", max_new_tokens_limit=1000
    )


@pytest.fixture(scope="session")
def textgen_url(gateway_repository: Path) -> Iterator[str]:
    from textgen_service.main import create_app as textgen_app

    with serve(textgen_app(textgen_settings(gateway_repository))) as url:
        yield url


@pytest.fixture(scope="session")
def caption_url(gateway_repository: Path) -> Iterator[str]:
    from caption_service.main import create_app as caption_app
    from caption_service.settings import CaptionSettings

    with serve(caption_app(CaptionSettings(model_repository=gateway_repository))) as url:
        yield url


def gateway_settings(caption: str, textgen: str, **overrides: Any) -> GatewaySettings:
    from gateway_service.settings import GatewaySettings

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
    from gateway_service.main import create_app

    with serve(create_app(gateway_settings(caption_url, textgen_url))) as url:
        yield url
