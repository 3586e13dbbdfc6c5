"""Style tokens: one per genre, the first line of every document of a styled corpus.

The tokenizer, the textgen service and the gateway read them from here, so a model trained
on `styled_LANG` is prompted with the same token it saw before each document.
"""

from __future__ import annotations

from typing import Final

STYLES: Final[dict[str, str]] = {
    "bible": "<|bible|>",
    "novel": "<|novel|>",
    "play": "<|play|>",
}


def style_token(style: str) -> str:
    """The token that opens a document of `style`; KeyError names the known styles."""
    try:
        return STYLES[style]
    except KeyError:
        raise KeyError(f"unknown style {style!r}; known: {sorted(STYLES)}") from None
