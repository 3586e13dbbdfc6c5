"""textgen-service on the committed model repository, as `talkative serve` runs it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import MODELS
from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

DEFAULTS = ["char_lstm_en", "char_lstm_fr", "gpt2_en", "gpt2_fr"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    settings = TextgenSettings(model_repository=MODELS, models=DEFAULTS)
    with serve(create_app(settings)) as base:
        yield base


def test_lists_every_default_model_with_its_held_out_figures(url: str) -> None:
    response = httpx.get(f"{url}/v1/models", timeout=30)
    assert response.status_code == 200, response.text
    models = {m["name"]: m for m in response.json()["models"]}
    assert sorted(models) == DEFAULTS
    for m in models.values():
        assert 0.5 < m["held_out_loss"]["nats_per_char"] < 2.0
        assert m["card"]["held_out_loss"]  # the whole report, notes included, is in the card
    assert models["gpt2_en"]["held_out_loss"]["perplexity"] > 1


@pytest.mark.parametrize("model", DEFAULTS)
def test_each_default_generates(url: str, model: str) -> None:
    body = {
        "prompt": "Et le roi" if model.endswith("fr") else "And the king",
        "model": model,
        "max_new_tokens": 20,
        "seed": 1,
    }
    response = httpx.post(f"{url}/v1/generations", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model and response.json()["text"]
