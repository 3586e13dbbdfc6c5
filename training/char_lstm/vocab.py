"""The character vocabulary a char-LSTM is trained on, saved beside the model as vocab.json."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CharVocab:
    """Characters sorted by code point; ids are positions in `chars`."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str, min_count: int = 1) -> CharVocab:
        counts = Counter(text)
        return cls(tuple(sorted(c for c, n in counts.items() if n >= min_count)))

    @classmethod
    def load(cls, path: Path) -> CharVocab:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(data["chars"]))

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps({"chars": list(self.chars)}, ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8",
        )

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text`; every character must be in the vocabulary (normalise first)."""
        index = self.index
        try:
            return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary") from exc

    def decode(self, ids: np.ndarray | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)
