"""The prompt step: register and language in the gateway; the alphabet in textgen-service.

The gateway frames the caption and sends it as built; textgen-service fits it to the
model and says what the model read, which is what the story response reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway_service.catalogue import ModelCatalogue
from gateway_service.clients import TextgenClient
from gateway_service.prompts import (
    STYLES,
    ModelProfile,
    UnknownStyle,
    allowed_styles,
    auto_style,
    make_prompt,
    plural_es,
    profile_from_model,
    scene_heading,
    tidy_caption,
    to_french,
    to_spanish,
)
from talkative_common.errors import InvalidInput
from talkative_common.generation_schema import ModelInfo, ModelList

GATEWAY = Path(__file__).resolve().parents[2] / "gateway-service" / "gateway_service"

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
        return ModelProfile("m", "en", corpus)

    assert auto_style(profile("kjv_en king james bible")) == "verse"
    assert auto_style(profile("segond_fr louis segond 1910 bible")) == "verse"
    assert auto_style(profile("imsdb movie scripts")) == "screenplay"
    assert auto_style(profile("austen novels")) == "tale"


@pytest.mark.parametrize("style", STYLES)
def test_styles_frame_the_caption(style: str) -> None:
    profile = ModelProfile("m", "en", "king james bible")
    prompt = make_prompt("a man riding a horse on a beach", profile, style)
    assert "a man riding a horse on a beach" in prompt.text.lower()
    expected = {
        "auto": "behold",
        "verse": "behold",
        "screenplay": "EXT. BEACH - DAY",
        "tale": "Once",
    }
    assert expected.get(style, "A man") in prompt.text
    # No trailing space: a byte-level model would read it as a token of its own.
    assert prompt.text == prompt.text.strip()


def test_a_model_without_the_newline_gets_a_full_stop_after_the_heading() -> None:
    caption = "a dog on a sandy beach"
    with_newlines = make_prompt(caption, ModelProfile("m", "en", ""), "screenplay")
    assert with_newlines.text == "EXT. SANDY BEACH - DAY\n\nA dog on a sandy beach."
    without = make_prompt(caption, ModelProfile("m", "en", "", newlines=False), "screenplay")
    assert without.text == "EXT. SANDY BEACH - DAY. A dog on a sandy beach."


def test_the_gateway_holds_no_copy_of_the_fitting_rules() -> None:
    """textgen-service owns each model's alphabet and fits prompts; the gateway neither
    probes for alphabets, nor lists byte-level kinds, nor re-applies the fallbacks."""
    for path in GATEWAY.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name in ("PROBE_CHARS", "BYTE_LEVEL", "strip_accents", "swapcase", "def fit("):
            assert name not in source, f"{path.name} has {name}"
    assert not (GATEWAY / "seeds.py").exists()


def test_the_story_steps_raise_domain_errors_not_problems() -> None:
    for name in ("catalogue.py", "prompts.py", "stories.py"):
        source = (GATEWAY / name).read_text(encoding="utf-8")
        assert "Problem" not in source and "talkative_common.problems" not in source, name


@pytest.mark.parametrize("name", ["tiny_en", "tiny_fr"])
def test_textgen_fits_every_prompt_to_the_model(
    name: str, gateway_repository: Path, textgen_url: str
) -> None:
    """The profile comes from /v1/models as published; textgen-service fits each prompt to
    the model's characters and says what it read."""
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
    assert profile.language == name[-2:] and profile.newlines == ("\n" in known)
    prompts = [
        make_prompt(caption, profile, style, night=night)
        for caption in CAPTIONS
        for style in STYLES
        for night in (False, True)
    ]
    with httpx.Client(base_url=textgen_url, timeout=60) as http:
        for text in {p.text for p in prompts}:
            response = http.post(
                "/v1/generations",
                json={"prompt": text, "model": name, "max_new_tokens": 1, "seed": 0},
            )
            assert response.status_code == 200, (text, response.text)
            read = response.json()["normalisation"]["prompt"]
            assert read and set(read) <= known, (text, set(read) - known)
            # Fitting only replaces what the model lacks: what it knows arrives as written.
            if set(text) <= known:
                assert read == text


def test_the_story_reports_the_prompt_textgen_read(
    client: httpx.Client, textgen_url: str, jpeg: bytes
) -> None:
    """prompt.text is textgen-service's fitted prompt, not the gateway's draft."""
    files = {"image": ("cat.jpg", jpeg, "image/jpeg")}
    form = {"model": "tiny_fr", "style": "tale", "max_new_tokens": "20", "seed": "3"}
    story = client.post("/v1/stories", files=files, data=form)
    assert story.status_code == 200, story.text
    body = story.json()
    with httpx.Client(base_url=textgen_url, timeout=60) as http:
        listing = ModelList.model_validate(http.get("/v1/models").json())
        info = next(m for m in listing.models if m.name == "tiny_fr")
        draft = make_prompt(body["caption"], profile_from_model(info), "tale")
        answer = http.post(
            "/v1/generations",
            json={"prompt": draft.text, "model": "tiny_fr", "max_new_tokens": 20, "seed": 3},
        ).json()
    assert body["prompt"]["text"] == answer["normalisation"]["prompt"]
    assert body["story"].startswith(body["prompt"]["text"])


def test_french_models_get_french_prompts() -> None:
    profile = ModelProfile("m", "fr", "segond_fr bible louis segond")
    prompt = make_prompt("a man riding a horse on a beach", profile)
    assert prompt.language == "fr" and prompt.translated and prompt.style == "verse"
    assert prompt.text.startswith("Et il arriva") and "un homme qui monte un cheval" in prompt.text


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


# --- Spanish -------------------------------------------------------------------------------------


def test_spanish_rendering_agrees_articles_adjectives_and_verbs() -> None:
    assert to_spanish("a man riding a horse on a sandy beach") == (
        "un hombre que monta un caballo en una playa de arena",
        True,
    )
    assert to_spanish("the red car") == ("el coche rojo", True)
    assert to_spanish("a white cat on the bed") == ("un gato blanco en la cama", True)
    assert to_spanish("the men and the women") == ("los hombres y las mujeres", True)
    assert to_spanish("two dogs playing in the water") == (
        "dos perros que juegan en el agua",
        True,
    )
    assert to_spanish("two sheep sitting in front of the house") == (
        "dos ovejas sentadas delante de la casa",
        True,
    )
    assert to_spanish("a woman sitting next to the white horses") == (
        "una mujer sentada al lado de los caballos blancos",
        True,
    )
    assert [plural_es(w) for w in ("camión", "luz", "marrón", "tabla de surf")] == [
        "camiones",
        "luces",
        "marrones",
        "tablas de surf",
    ]
    text, complete = to_spanish("a cat near a xylophone")
    assert text == "un gato cerca de un xylophone" and not complete


def test_spanish_models_get_spanish_prompts_and_headings() -> None:
    profile = ModelProfile("m", "es", "reina valera bible")
    prompt = make_prompt("a man riding a horse on a beach", profile)
    assert prompt.language == "es" and prompt.translated and prompt.style == "verse"
    assert prompt.text == (
        "Y aconteció que, mientras miraban, vieron un hombre que monta un caballo en una "
        "playa; y he aquí,"
    )
    assert make_prompt("a dog on a sandy beach", profile, "screenplay", night=True).text == (
        "EXT. PLAYA DE ARENA - NOCHE\n\nUn perro en una playa de arena."
    )
    assert make_prompt("a cat", profile, "tale").text == "Érase una vez un gato. Un día,"
    assert scene_heading("a woman in a kitchen", False, "es") == "INT. COCINA - DÍA"


def test_the_default_captioners_group_captions_all_have_a_spanish_rendering() -> None:
    from training.captioner import imagenet_captions

    captions = {c for i in range(1000) for c in imagenet_captions.hypernym_captions(i) or ()}
    for caption in captions:
        spanish, complete = to_spanish(tidy_caption(caption))
        assert complete, (caption, spanish)


# --- models trained with style tokens (genres) --------------------------------------------------

GENRES = ("bible", "novel", "play")
CAPTION = "a man riding a horse on a sandy beach"
# genre -> language -> the opening, by day.
OPENINGS = {
    "bible": {
        "en": "And it came to pass, as they looked, that they saw a man riding a horse on a "
        "sandy beach; and, behold,",
        "fr": "Et il arriva, comme ils regardaient, qu'ils virent un homme qui monte un "
        "cheval sur une plage de sable; et voici,",
        "es": "Y aconteció que, mientras miraban, vieron un hombre que monta un caballo en "
        "una playa de arena; y he aquí,",
    },
    "novel": {
        "en": "It was a quiet morning in early spring when I first saw a man riding a horse "
        "on a sandy beach, and",
        "fr": "C'était un matin tranquille du début du printemps quand je vis pour la "
        "première fois un homme qui monte un cheval sur une plage de sable, et",
        "es": "Era una mañana tranquila de principios de primavera cuando vi por primera vez "
        "un hombre que monta un caballo en una playa de arena, y",
    },
    "play": {
        "en": "ACT I. SCENE I. A sandy beach.\n\nEnter a man riding a horse.",
        "fr": "ACTE I. SCÈNE I. Une plage de sable.\n\nEntre un homme qui monte un cheval.",
        "es": "ACTO I. ESCENA I. Una playa de arena.\n\nEntra un hombre que monta un caballo.",
    },
}


def styled(language: str, styles: tuple[str, ...] = GENRES, **kw: bool) -> ModelProfile:
    return ModelProfile(f"gpt2_{language}", language, "", styles=styles, **kw)


@pytest.mark.parametrize("language", ["en", "fr", "es"])
@pytest.mark.parametrize("genre", GENRES)
def test_each_genre_has_its_own_opening(genre: str, language: str) -> None:
    prompt = make_prompt(CAPTION, styled(language), genre)
    assert prompt.text == OPENINGS[genre][language]
    assert prompt.style == genre and prompt.genre == genre and prompt.language == language
    assert prompt.translated == (language != "en")
    assert prompt.text == prompt.text.strip()


def test_genre_openings_by_night_and_without_the_newline() -> None:
    assert make_prompt(CAPTION, styled("en"), "novel", night=True).text.startswith(
        "It was a quiet night"
    )
    play = make_prompt("two dogs in a park", styled("es"), "play", night=True).text
    assert play == "ACTO I. ESCENA I. Un parque. Es de noche.\n\nEntran dos perros."
    flat = make_prompt(CAPTION, styled("en", newlines=False), "play").text
    assert flat == "ACT I. SCENE I. A sandy beach. Enter a man riding a horse."
    assert make_prompt("a dog", styled("en"), "play").text == "ACT I. SCENE I.\n\nEnter a dog."


def test_auto_picks_the_models_first_genre_and_plain_names_none() -> None:
    for first in GENRES:
        order = (first, *(g for g in GENRES if g != first))
        prompt = make_prompt(CAPTION, styled("en", order), "auto")
        assert prompt.style == prompt.genre == first
        assert prompt.text == OPENINGS[first]["en"]
    plain = make_prompt(CAPTION, styled("fr", ("bible",)), "plain")
    assert (
        plain.genre is None and plain.text == "Un homme qui monte un cheval sur une plage de sable."
    )
    assert make_prompt(CAPTION, styled("es", ("bible",))).text == OPENINGS["bible"]["es"]


def test_models_without_style_tokens_send_no_genre() -> None:
    for style in STYLES:
        assert make_prompt(CAPTION, ModelProfile("m", "en", "bible"), style).genre is None


def test_a_style_the_model_lacks_is_refused_naming_the_allowed_ones() -> None:
    spanish = styled("es", ("bible",))
    assert allowed_styles(spanish) == ("auto", "bible", "plain")
    assert allowed_styles(ModelProfile("m", "en", "")) == STYLES
    for profile, style in [
        (spanish, "novel"),
        (spanish, "verse"),
        (ModelProfile("m", "en", ""), "novel"),
    ]:
        with pytest.raises(UnknownStyle) as refused:
            make_prompt(CAPTION, profile, style)
        assert isinstance(refused.value, InvalidInput) and refused.value.field == "style"
        for name in allowed_styles(profile):
            assert name in refused.value.detail


def test_the_profile_reads_the_models_styles() -> None:
    entry = {
        "name": "gpt2_es", "version": 1, "kind": "gpt2", "language": "es",
        "description": "", "parameters": 1, "held_out_loss": {}, "max_new_tokens": 10,
        "tokenizer": "byte_level_bpe", "alphabet": None, "card": {},
    }  # fmt: skip
    assert profile_from_model(ModelInfo.model_validate(entry)).styles == ()
    info = ModelInfo.model_validate(entry | {"styles": ["bible"]})
    assert profile_from_model(info).styles == ("bible",)
