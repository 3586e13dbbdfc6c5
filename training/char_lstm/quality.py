"""Readability of generated text: the share of generated words that occur in the training corpus.

A char-LSTM that has not learnt spelling invents words ("thingeth", "comman"), so
this share is a cheap, model-free check that output reads as the corpus does.
The same measure serves the quick test and `bench/textgen.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.char_lstm.vocab import CharVocab

# Letters (any script, accents included) with inner apostrophes or hyphens: "LORD's", "c'est".
WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def corpus_vocabulary(corpus_file: Path) -> set[str]:
    return set(words(corpus_file.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class WordShare:
    known: int
    total: int
    unknown: tuple[str, ...]

    @property
    def share(self) -> float:
        return self.known / self.total if self.total else 0.0


def known_word_share(texts: Iterable[str], vocabulary: set[str]) -> WordShare:
    """Words of `texts` found in `vocabulary`; each text's last word is dropped (it may be cut)."""
    known, total, unknown = 0, 0, []
    for text in texts:
        ws = words(text)[:-1]
        total += len(ws)
        for w in ws:
            if w in vocabulary:
                known += 1
            else:
                unknown.append(w)
    return WordShare(known, total, tuple(unknown))


def generate_batch(
    loaded: Any,
    vocab: CharVocab,
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
) -> list[str]:
    """One call of an exported model's `generate` signature; one row per (prompt, seed)."""
    import tensorflow as tf

    encoded = [vocab.encode(p) for p in prompts]
    width = max(len(e) for e in encoded)
    ids = np.zeros((len(prompts), width), np.int32)
    for row, e in enumerate(encoded):
        ids[row, : len(e)] = e
    batch = len(prompts)
    out = loaded.signatures["generate"](
        prompt_ids=tf.constant(ids),
        prompt_lengths=tf.constant([len(e) for e in encoded], tf.int32),
        max_new_tokens=tf.fill([batch], tf.constant(max_new_tokens, tf.int32)),
        temperature=tf.fill([batch], tf.constant(temperature, tf.float32)),
        top_k=tf.fill([batch], tf.constant(top_k, tf.int32)),
        top_p=tf.fill([batch], tf.constant(top_p, tf.float32)),
        seed=tf.constant(list(seeds), tf.int64),
    )
    token_ids, lengths = out["token_ids"].numpy(), out["lengths"].numpy()
    return [vocab.decode(token_ids[r, : lengths[r]]) for r in range(batch)]
