"""Prompt normalisation to a character model's alphabet.

A char-LSTM knows only the characters of its training text. A prompt is fitted
to that alphabet in this order, per character:
1. typography folded (curly quotes, dashes, ellipsis, odd spaces -> ASCII forms);
2. a character the model knows is kept;
3. an accented letter the model lacks becomes its base letter ("é" -> "e" for KJV);
4. otherwise the other case of the letter if the model knows it ("Q" -> "q");
5. punctuation and symbols the model lacks (emoji included) are dropped, so a
   closing quote does not leave a stray space; anything else (letters of other
   scripts, digits the model never saw, a newline it lacks) becomes a space.
Runs of spaces are then collapsed and the ends stripped. What was replaced is
returned to the caller, so the API can say what the model actually read.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from talkative_common.text import collapse_spaces, fold_typography, strip_accents


@dataclass(frozen=True)
class NormalisedPrompt:
    text: str
    replaced: dict[str, str]

    @property
    def changed(self) -> bool:
        return bool(self.replaced)


class Alphabet:
    def __init__(self, chars: tuple[str, ...] | list[str]) -> None:
        self.chars = tuple(chars)
        self.known = frozenset(self.chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    def _fit(self, char: str) -> str:
        if char in self.known:
            return char
        for candidate in (strip_accents(char), char.swapcase(), strip_accents(char).swapcase()):
            if len(candidate) == 1 and candidate in self.known:
                return candidate
        return "" if unicodedata.category(char)[0] in "PS" else " "

    def normalise(self, prompt: str) -> NormalisedPrompt:
        folded = fold_typography(prompt.replace("\r\n", "\n"))
        replaced: dict[str, str] = {}
        out = []
        for char in folded:
            fitted = self._fit(char)
            if fitted != char:
                replaced[char] = fitted
            out.append(fitted)
        text = collapse_spaces("".join(out)).strip(" ")
        for char in set(prompt) - set(folded):  # folded typography counts as a replacement
            replaced.setdefault(char, fold_typography(char))
        return NormalisedPrompt(text, replaced)

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids if 0 <= i < len(self.chars))
