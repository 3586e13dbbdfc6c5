"""Reply text within the platform's limit, alt text from caption and story, the word filter."""

from __future__ import annotations

import re
from collections.abc import Callable

import regex

ELLIPSIS = "…"


def fit(text: str, limit: int, measure: Callable[[str], int] = len) -> str:
    """`text` cut at a word boundary (with an ellipsis) so that measure(result) <= limit."""
    text = " ".join(text.split())
    if measure(text) <= limit:
        return text
    words = text.split(" ")
    while len(words) > 1:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:.-—") + ELLIPSIS
        if measure(candidate) <= limit:
            return candidate
    # One enormous word: cut whole grapheme clusters (an emoji sequence, a flag or a letter
    # with its combining marks is never split).
    clusters = regex.findall(r"\X", text)
    while clusters and measure("".join(clusters) + ELLIPSIS) > limit:
        clusters.pop()
    return "".join(clusters) + ELLIPSIS if clusters else ""


def reply_text(handle: str, body: str, limit: int, measure: Callable[[str], int] = len) -> str:
    """`@handle body`, the body shortened to fit; the mention itself is never cut."""
    prefix = f"@{handle} " if handle else ""
    return prefix + fit(body, limit - measure(prefix), measure)


def story_body(caption: str, story: str) -> str:
    caption = caption.strip().rstrip(".")
    return f"{caption[:1].upper()}{caption[1:]}. {story.strip()}" if caption else story.strip()


def alt_text(caption: str, story: str, limit: int) -> str:
    return fit(
        f"Story card. The photo shows {caption.strip().rstrip('.')}. Story: {story.strip()}", limit
    )


class WordFilter:
    """Words (and phrases) that must never be posted, matched whole and case-insensitively."""

    def __init__(self, words: list[str]) -> None:
        words = [w.strip() for w in words if w.strip()]
        self.pattern = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
            if words
            else None
        )

    def blocked(self, *texts: str) -> list[str]:
        if self.pattern is None:
            return []
        return sorted({m.group(0).lower() for t in texts for m in self.pattern.finditer(t)})
