"""Header and licence stripped by PG's markers, whatever their era and length."""

from __future__ import annotations

import pytest

from tests.training.corpora import gutenberg_mirror as gm
from training.corpora.pg_text import MarkerError, has_markers, strip_gutenberg


@pytest.mark.parametrize(
    ("text", "body"),
    [
        (gm.CANDIDE, gm.CANDIDE_BODY),  # 2020s, with a "Produced by" credit
        (gm.DUMAS, gm.DUMAS_BODY),  # "THIS PROJECT", "End of the Project Gutenberg EBook"
        (gm.BOVARY, gm.BOVARY_BODY),  # "***START" without spaces, "End of Project Gutenberg's"
        (gm.ALICE, gm.ALICE_BODY),  # 1990s small print
        (gm.PRIDE, gm.PRIDE_BODY),  # the start marker wrapped over two lines
    ],
)
def test_body_between_markers(text: str, body: str):
    stripped = strip_gutenberg(text)
    assert stripped.text == body
    assert "Project Gutenberg" not in stripped.text and "Produced by" not in stripped.text


def test_headers_of_different_lengths():
    long_header = "Some header line about Project Gutenberg.\n" * 300
    assert strip_gutenberg(long_header + gm.CANDIDE).text == gm.CANDIDE_BODY
    longer = gm.CANDIDE.replace("\n\nTitle:", "\n\n" + long_header + "Title:")
    assert strip_gutenberg(longer).text == gm.CANDIDE_BODY


def test_case_and_spacing_of_markers():
    text = (
        "head\n**  start of this project gutenberg ebook x  **\n"
        "Body.\n* end of this project gutenberg ebook x *\n"
    )
    assert strip_gutenberg(text).text == "Body.\n"
    text = (
        "head\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
        "Body.\nEnd of this Project Gutenberg Etext of X\n"
    )
    assert strip_gutenberg(text).text == "Body.\n"


def test_text_without_markers_is_rejected():
    assert not has_markers(gm.NO_MARKERS)
    with pytest.raises(MarkerError, match="no start marker"):
        strip_gutenberg(gm.NO_MARKERS)
    with pytest.raises(MarkerError, match="no end marker"):
        strip_gutenberg("*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBody without end.\n")
