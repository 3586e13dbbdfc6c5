"""Fixtures shared by the whole suite: the real model repository and a tiny trained char-LSTM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The three services on 127.0.0.1, shared by tests/gateway and tests/api_contract; a real
# redis-server (the gateway's shared store, the bot's lease).
pytest_plugins = ["tests.support.stack", "tests.support.redis_server"]

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "serving" / "models"
CORPORA = ROOT / "data" / "corpora"

TINY_TEXT = (
    "In the beginning was the word, and the word was with the king.\n"
    "And the king said unto the people, Go ye and sow the field.\n"
    "Et le roi dit: Allez, semez le champ; voilà l'été.\n"
)


@pytest.fixture()
def client(service_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of the service a test folder serves: its conftest's `service_url`."""
    with httpx.Client(base_url=service_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.text_models import write_tiny_corpus

    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"), TINY_TEXT)


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.text_models import train_tiny_char_lstm

    return train_tiny_char_lstm(tiny_corpus, tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def tiny_repository(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding one tiny exported char-LSTM, `tiny_en` version 1."""
    from training.char_lstm.export import export_run

    repo = tmp_path_factory.mktemp("models")
    export_run(tiny_run, repo / "tiny_en" / "1", name="tiny_en", language="en")
    return repo


@pytest.fixture(scope="session")
def offline_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real photos `make run` writes to data/photos (they ship inside scikit-image,
    scikit-learn and matplotlib), written the same way for the tests: data/ is not in git."""
    from training.captioner.offline_photos import PHOTOS, as_bytes

    out = tmp_path_factory.mktemp("photos")
    for photo in PHOTOS:
        (out / f"{photo.name}.jpg").write_bytes(as_bytes(photo, "JPEG"))
    return out


def default_model(name: str, version: int = 1) -> Path:
    path = MODELS / name / str(version)
    if not (path / "saved_model.pb").exists():
        pytest.fail(f"{path} is missing: the default models are committed (make models)")
    return path


# Figures a test measures (recovery times, traffic shares, RSS) are kept with
# `record_property("figure", "...")` and printed at the end of every run, passing or not:
# a plain `make test` shows them, and under pytest-xdist they travel with each report.
_FIGURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FIGURES.extend((report.nodeid, str(v)) for k, v in report.user_properties if k == "figure")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures measured by the tests")
        for nodeid, text in _FIGURES:
            terminalreporter.write_line(f"{nodeid}: {text}")
