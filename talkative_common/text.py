"""Text normalisation shared by corpus builders and services, so training and serving agree."""

from __future__ import annotations

import re
import unicodedata

# Typographic characters every corpus folds to the plain ones it uses
# (training.corpora.common.clean_text), so the models' alphabets stay small.
CORPUS_FOLDS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
}
# A prompt is folded further, to what the corpora hold, so one typed on a phone still matches.
TYPOGRAPHY = str.maketrans(
    CORPUS_FOLDS
    | {
        "\u201a": "'",
        "\u2032": "'",
        "\u201e": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
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
