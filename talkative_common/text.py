"""Text normalisation shared by corpus builders and services, so training and serving agree."""

from __future__ import annotations

import re
import unicodedata

# Typographic characters folded to the plain ones the corpora use.
TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\t": " ",
    }
)
_SPACES = re.compile(r"[ ]{2,}")


def fold_typography(text: str) -> str:
    """NFC-normalise and fold curly quotes, dashes, ellipses and odd spaces to ASCII ones."""
    return unicodedata.normalize("NFC", text).translate(TYPOGRAPHY)


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text)


def strip_accents(char: str) -> str:
    """'é' -> 'e', 'Æ' -> 'Æ' (no decomposition): the base letter when Unicode has one."""
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base or char
