"""The captioner's word vocabulary: four special tokens, then words by frequency."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(4)
# Words (letters, digits, inner apostrophes and hyphens) and the punctuation kept as tokens.
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[.,!?;:]")


def tokenize(caption: str) -> list[str]:
    """'A cat, on the mat.' -> ['a', 'cat', ',', 'on', 'the', 'mat', '.']"""
    return _TOKEN.findall(caption.lower().replace("’", "'"))


def detokenize(words: Sequence[str]) -> str:
    text = " ".join(words)
    return re.sub(r" ([.,!?;:])", r"\1", text)


@dataclass(frozen=True)
class WordVocab:
    words: tuple[str, ...]  # index = id; the first four are SPECIALS

    @classmethod
    def build(
        cls, captions: Iterable[str], *, min_count: int = 1, max_size: int | None = None
    ) -> WordVocab:
        """Words seen at least `min_count` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for c in captions for w in tokenize(c))
        ranked = sorted(
            (w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls((*SPECIALS, *ranked))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, caption: str, max_len: int) -> list[int]:
        """<start> w1 .. wn <end>, words past `max_len` dropped, unknown words <unk>."""
        index = self.index
        ids = [index.get(w, UNK_ID) for w in tokenize(caption)][:max_len]
        return [START_ID, *ids, END_ID]

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for i in ids:
            if i == END_ID:
                break
            if i not in (PAD_ID, START_ID):
                words.append(self.words[i])
        return detokenize(words)

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps({"words": list(self.words)}, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        words = tuple(json.loads(path.read_text(encoding="utf-8"))["words"])
        if words[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"{path}: a captioner vocabulary starts with {SPECIALS}")
        return cls(words)
