"""The seed step: register, language and, above all, only characters the model knows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway_service.catalogue import ModelCatalogue
from gateway_service.clients import TextgenClient
from gateway_service.seeds import (
    STYLES,
    ModelProfile,
    auto_style,
    fit,
    make_seed,
    scene_heading,
    tidy_caption,
    to_french,
)

CAPTIONS = [
    "a man riding a horse on a sandy beach",
    "A red car parked in the street.",
    "two dogs playing with a ball in a grassy field",
    "a woman sitting at a table in a kitchen",
    "an astronaut holding a flag",
    "“Déjà vu” — a café at night 😀 in Zürich",
    "",
]


def vocabulary(repository: Path, name: str) -> frozenset[str]:
    return frozenset(
        json.loads((repository / name / "1/assets.extra/vocab.json").read_text())["chars"]
    )


def test_tidy_caption() -> None:
    assert tidy_caption("  A dog on a  skateboard . ") == "a dog on a skateboard"
    assert tidy_caption("NASA rocket") == "NASA rocket"


def test_french_rendering_agrees_articles_and_adjectives() -> None:
    assert to_french("a man riding a horse on a sandy beach") == (
        "un homme qui monte un cheval sur une plage de sable",
        True,
    )
    assert to_french("the red car") == ("la voiture rouge", True)
    assert to_french("a white cat on the bed") == ("un chat blanc sur le lit", True)
    assert to_french("the men and the women") == ("les hommes et les femmes", True)
    assert to_french("a dog in front of the house") == ("un chien devant la maison", True)
    text, complete = to_french("a cat near a xylophone")
    assert text == "un chat près d'un xylophone" and not complete


def test_scene_heading() -> None:
    assert scene_heading("a dog on a sandy beach", False, "en") == "EXT. SANDY BEACH - DAY"
    assert scene_heading("a woman in a kitchen", True, "en") == "INT. KITCHEN - NIGHT"
    assert scene_heading("un chien", False, "fr").startswith("EXT. ")
    assert scene_heading("a dog on a beach", True, "fr") == "EXT. PLAGE - NUIT"


def test_auto_style_follows_the_corpus() -> None:
    def profile(corpus: str) -> ModelProfile:
        return ModelProfile("m", "en", corpus, None)

    assert auto_style(profile("kjv_en king james bible")) == "verse"
    assert auto_style(profile("segond_fr louis segond 1910 bible")) == "verse"
    assert auto_style(profile("imsdb movie scripts")) == "screenplay"
    assert auto_style(profile("austen novels")) == "tale"


@pytest.mark.parametrize("style", STYLES)
def test_styles_frame_the_caption(style: str) -> None:
    profile = ModelProfile("m", "en", "king james bible", None)
    seed = make_seed("a man riding a horse on a beach", profile, style)
    assert "a man riding a horse on a beach" in seed.text.lower()
    expected = {
        "auto": "behold",
        "verse": "behold",
        "screenplay": "EXT. BEACH - DAY",
        "tale": "Once",
    }
    assert expected.get(style, "A man") in seed.text


def test_fit_uses_the_textgen_fallbacks() -> None:
    profile = ModelProfile("m", "en", "", frozenset("abcdefgh ,."))
    assert fit("Déjà, vu!", profile) == "de a,"
    assert fit("Bé—ef! 中 ch", profile) == "beef ch"
    for text in ("Déjà, vu!", "Bé—ef! 中 ch", "“Gah”"):
        assert set(fit(text, profile)) <= profile.alphabet  # type: ignore[operator]


@pytest.mark.parametrize("name", ["tiny_en", "tiny_fr"])
def test_every_seed_uses_only_characters_the_model_knows(
    name: str, gateway_repository: Path, textgen_url: str
) -> None:
    """The alphabet the gateway learns from textgen-service, and the seeds made with it."""
    import asyncio

    known = vocabulary(gateway_repository, name)

    async def learn() -> ModelProfile:
        client = TextgenClient(
            "textgen-service",
            textgen_url,
            timeout_s=60,
            connect_timeout_s=2,
            retries=0,
            backoff_s=0.1,
            retry_after_s=5,
            max_connections=2,
        )
        try:
            return await ModelCatalogue(client, 60).profile(name)
        finally:
            await client.close()

    profile = asyncio.run(learn())
    assert profile.alphabet is not None and profile.alphabet <= known
    assert profile.language == name[-2:]
    seeds = [
        make_seed(caption, profile, style, night=night)
        for caption in CAPTIONS
        for style in STYLES
        for night in (False, True)
    ]
    for seed in seeds:
        assert seed.text and set(seed.text) <= known, (seed, set(seed.text) - known)
    # And textgen-service agrees: it reads each seed without changing a character.
    with httpx.Client(base_url=textgen_url, timeout=60) as http:
        for text in {s.text for s in seeds}:
            body = http.post(
                "/v1/generations",
                json={"prompt": text, "model": name, "max_new_tokens": 1, "seed": 0},
            ).json()
            assert body["normalisation"]["changed"] is False, (text, body["normalisation"])
            assert body["normalisation"]["prompt"] == text


def test_french_models_get_french_seeds() -> None:
    profile = ModelProfile("m", "fr", "segond_fr bible louis segond", None)
    seed = make_seed("a man riding a horse on a beach", profile)
    assert seed.language == "fr" and seed.translated and seed.style == "verse"
    assert seed.text.startswith("Et il arriva") and "un homme qui monte un cheval" in seed.text


def test_the_default_captioners_group_captions_all_have_a_french_rendering() -> None:
    # What the default captioner says when it hesitates ("a dog.", "a photo of a person.")
    # reaches French models translated, not half in English.
    from training.captioner import imagenet_captions

    captions = {c for i in range(1000) for c in imagenet_captions.hypernym_captions(i) or ()}
    assert len(captions) > 50
    for caption in captions:
        french, complete = to_french(tidy_caption(caption))
        assert complete, (caption, french)
    assert to_french("a cup of espresso coffee") == ("une tasse de café expresso", True)
