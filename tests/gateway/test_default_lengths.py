"""The story length fits every served model: with the committed models (each text model's
newest version), a story with default settings, a story of 600 tokens and a story of the
length /v1/models advertises all succeed, in every style the model was trained with,
whatever the prompt takes of the context; one token more is a 422 naming the limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

TEXT_MODELS = sorted(
    p.name for p in MODELS.iterdir() if p.is_dir() and p.name != "captioner" and any(p.iterdir())
)
LONG = 600  # the length: past a 512-token context, so the window must slide
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway() -> Iterator[httpx.Client]:
    textgen = TextgenSettings(model_repository=MODELS, max_new_tokens_limit=1000)
    with (
        serve(caption_app(CaptionSettings(model_repository=MODELS))) as caption_url,
        serve(textgen_app(textgen)) as textgen_url,
        serve(
            gateway_app(
                GatewaySettings(
                    caption_url=caption_url, textgen_url=textgen_url, max_new_tokens_limit=1000
                )
            )
        ) as url,
        httpx.Client(base_url=url, timeout=600) as client,
    ):
        yield client


def story(client: httpx.Client, **options: str) -> httpx.Response:
    photo = ("chelsea.jpg", photo_bytes("JPEG", (320, 240)), "image/jpeg")
    return client.post("/v1/stories", files={"image": photo}, data={"seed": "3", **options})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("model", TEXT_MODELS)
def test_default_600_and_advertised_lengths_work_in_every_style(
    gateway: httpx.Client, model: str
) -> None:
    listed = {m["name"]: m for m in gateway.get("/v1/models").json()["models"]}
    offered = listed[model]["max_new_tokens"]
    styles = listed[model].get("styles") or [None]
    for style in styles:
        options = {"model": model} | ({"style": style} if style else {})
        ok(story(gateway, **options))
        if offered >= LONG:
            long = ok(story(gateway, **options, max_new_tokens=str(LONG)))
            assert long["story"].startswith(long["prompt"]["text"].strip()[:20])
        longest = ok(story(gateway, **options, max_new_tokens=str(offered)))
        assert longest["prompt"]["text"]
    too_long = story(gateway, model=model, max_new_tokens=str(offered + 1))
    assert too_long.status_code == 422, too_long.text
    assert f"at most {offered}" in too_long.json()["detail"]


def test_the_gpt2_defaults_take_600_tokens() -> None:
    """The issue's lengths: the newest GPT-2 of each language slides its window."""
    import json

    for model in (m for m in TEXT_MODELS if m.startswith("gpt2_")):
        newest = max(
            (p for p in (MODELS / model).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        card = json.loads((newest / "assets.extra" / "model_card.json").read_text())
        assert "sliding_window" in card and card["max_new_tokens_cap"] >= LONG, newest
