"""The story length is fitted to the model: with the committed GPT-2 models (a 256-token
context), a story with default settings and a story of the length /v1/models advertises
both succeed, whatever the seed prompt takes of the context."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from caption_service.main import create_app as caption_app
from caption_service.settings import CaptionSettings
from gateway_service.main import create_app as gateway_app
from gateway_service.settings import GatewaySettings
from tests.conftest import MODELS
from tests.gateway.conftest import photo_bytes
from tests.support.servers import serve
from textgen_service.main import create_app as textgen_app
from textgen_service.settings import TextgenSettings

GPT2 = ["gpt2_en", "gpt2_fr"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway() -> Iterator[httpx.Client]:
    textgen = TextgenSettings(model_repository=MODELS, models=GPT2, default_model="gpt2_en")
    with (
        serve(caption_app(CaptionSettings(model_repository=MODELS))) as caption_url,
        serve(textgen_app(textgen)) as textgen_url,
        serve(
            gateway_app(GatewaySettings(caption_url=caption_url, textgen_url=textgen_url))
        ) as url,
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        yield client


def story(client: httpx.Client, **options: str) -> httpx.Response:
    photo = ("chelsea.jpg", photo_bytes("JPEG", (320, 240)), "image/jpeg")
    return client.post("/v1/stories", files={"image": photo}, data={"seed": "3", **options})


@pytest.mark.parametrize("model", GPT2)
def test_default_length_and_advertised_length_both_work(gateway: httpx.Client, model: str) -> None:
    offered = {m["name"]: m["max_new_tokens"] for m in gateway.get("/v1/models").json()["models"]}
    assert 0 < offered[model] < 256  # the context holds the prompt too
    default = story(gateway, model=model)
    assert default.status_code == 200, default.text
    longest = story(gateway, model=model, max_new_tokens=str(offered[model]))
    assert longest.status_code == 200, longest.text
    body = longest.json()
    assert body["prompt"]["text"] and body["story"].startswith(body["prompt"]["text"].strip()[:20])
    too_long = story(gateway, model=model, max_new_tokens=str(offered[model] + 1))
    assert too_long.status_code == 422, too_long.text
    assert f"at most {offered[model]}" in too_long.json()["detail"]
