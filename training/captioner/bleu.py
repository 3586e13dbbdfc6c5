"""Corpus BLEU (Papineni et al., 2002), the number captioning papers report.

Pure Python so the training pipeline needs no NLTK. For every hypothesis, each
n-gram's count is clipped to the most times it occurs in any one reference; the
clipped counts and the hypothesis n-gram counts are summed over the corpus before
dividing (corpus-level, not an average of sentence scores). BLEU-N is the geometric
mean of the precisions for n = 1..N times the brevity penalty exp(1 - r / c) when
the total hypothesis length c is below r, the sum over hypotheses of the reference
length closest to each hypothesis's (the shorter on a tie). No smoothing: a corpus
with no matching 4-gram scores 0, as in the original and in `multi-bleu.perl`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from training.captioner.vocab import tokenize


@dataclass(frozen=True)
class BleuScore:
    bleu: float
    precisions: tuple[float, ...]  # modified n-gram precision for n = 1..N
    brevity_penalty: float
    hypothesis_length: int  # c
    reference_length: int  # r

    def to_dict(self) -> dict[str, object]:
        return {
            "bleu": self.bleu,
            "precisions": list(self.precisions),
            "brevity_penalty": self.brevity_penalty,
            "hypothesis_length": self.hypothesis_length,
            "reference_length": self.reference_length,
        }


def ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def closest_length(hypothesis_length: int, references: Sequence[Sequence[str]]) -> int:
    """The reference length closest to the hypothesis's; the shorter one on a tie."""
    return min((len(r) for r in references), key=lambda n: (abs(n - hypothesis_length), n))


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    max_n: int = 4,
) -> BleuScore:
    """BLEU-`max_n` of tokenised hypotheses, each against its own list of references."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    matched = [0] * max_n
    total = [0] * max_n
    c = r = 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        c += len(hyp)
        r += closest_length(len(hyp), refs)
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            most: Counter[tuple[str, ...]] = Counter()
            for ref in refs:
                most |= ngrams(ref, n)  # element-wise max over the references
            matched[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            total[n - 1] += sum(counts.values())
    precisions = tuple(m / t if t else 0.0 for m, t in zip(matched, total, strict=True))
    if c == 0:
        return BleuScore(0.0, precisions, 0.0, c, r)
    penalty = 1.0 if c > r else math.exp(1.0 - r / c)
    if min(precisions) == 0.0:
        return BleuScore(0.0, precisions, penalty, c, r)
    log_mean = sum(math.log(p) for p in precisions) / max_n
    return BleuScore(penalty * math.exp(log_mean), precisions, penalty, c, r)


def caption_bleu(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> BleuScore:
    """BLEU of caption strings, tokenised as the captioner's vocabulary does."""
    return corpus_bleu(
        [tokenize(h) for h in hypotheses],
        [[tokenize(r) for r in refs] for refs in references],
        max_n,
    )
