"""The story card (layout, accents, cutting at a sentence); the stores: test_story_store.py."""

from __future__ import annotations

import io

from PIL import Image

from gateway_service.card import (
    ALT_TEXT_MAX,
    HEIGHT,
    WIDTH,
    alt_text,
    cut_at_sentence,
    font,
    render_card,
    wrap,
)
from gateway_service.store import StoryStore

PHOTO = Image.new("RGB", (640, 480), (40, 90, 160))
ACCENTS = "àâäçéèêëîïôöùûüÿœæ ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ ąęłńśźż ãõ ñ ß ő ű ř č ě ů"


def test_card_is_a_social_sized_png() -> None:
    png, shown = render_card(PHOTO, "a blue square", "And it came to pass. The end.", "m")
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size == (WIDTH, HEIGHT) == (1080, 1350)
        assert img.getpixel((WIDTH // 2, 300)) == (40, 90, 160)  # the photo is on it
    assert shown == "And it came to pass. The end."


def test_bundled_fonts_have_every_latin_accent() -> None:
    for name in ("DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSans.ttf"):
        face = font(name, 30)
        missing = face.getmask("\uffff").getbbox()  # what a missing glyph looks like
        for char in ACCENTS.replace(" ", ""):
            assert face.getmask(char).getbbox() != missing, (name, char)


def test_long_story_is_cut_after_a_whole_sentence() -> None:
    sentence = "Et il arriva que le roi dit à son peuple: allez, semez le champ de l'été. "
    story = sentence * 80
    _, shown = render_card(PHOTO, "une image", story, "m")
    assert len(shown) < len(story) and shown.endswith("été.")
    assert story.startswith(shown)


def test_story_without_a_sentence_end_gets_an_ellipsis() -> None:
    words = "word " * 2000
    shown = cut_at_sentence(words, lambda t: len(t) < 100)
    assert shown.endswith("…") and len(shown) <= 100


def test_wrap_respects_width_and_paragraphs() -> None:
    face = font("DejaVuSerif.ttf", 30)
    lines = wrap("EXT. BEACH - DAY\n\nA " + "verylongword" * 20 + " end", face, 400)
    assert lines[0] == "EXT. BEACH - DAY" and lines[1] == ""
    assert all(face.getlength(line) <= 400 for line in lines)


def test_alt_text_within_platform_limits() -> None:
    short = alt_text("a cat.", "It purred.")
    assert short == "A photo of a cat. Below it, a story: It purred."
    long = alt_text("a cat", "word " * 1000)
    assert len(long) <= ALT_TEXT_MAX and long.endswith("…")


def test_ids_are_unguessable() -> None:
    ids = {StoryStore.new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 16 for i in ids)
