"""Turn crawled documents (screenplays, books) into a training corpus the text models read.

The steps, in order:

1. **Normalise** each document: NFC, typographic quotes and dashes folded to ASCII
   (`common.clean_text`, the rule every corpus follows), control characters dropped,
   runs of spaces collapsed, at most one blank line between paragraphs.
2. **De-duplicate**: an exact copy (same text once case and whitespace are ignored) is
   dropped, and so is a near copy: two editions of one book, a script posted twice under
   two titles. Near copies are found with MinHash over word 5-grams; a document whose
   estimated Jaccard similarity with one already kept reaches the threshold is dropped,
   and the manifest says which one it duplicated.
3. **Split by document**, never inside one: a document goes to validation when a hash of
   its title (and the seed) falls under the fraction. The rule depends on nothing but
   the title, so a corpus rebuilt after a longer crawl keeps every earlier document on
   the same side and validation never leaks into training.
4. **Write** train.txt, valid.txt and manifest.json (sizes, checksums, the documents of
   each split, every source with its URL and checksum, and what was dropped and why).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.corpora.common import CorpusManifest, Document, clean_text, write_corpus

# Quote marks that clean_text leaves alone; the models' alphabets fold them too.
_EXTRA_FOLD = str.maketrans(
    {"\u201a": "'", "\u201e": '"', "\u2039": '"', "\u203a": '"', "\u2032": "'", "\u2033": '"'}
)
_BLANK_RUNS = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+", re.UNICODE)
_PRIME = (1 << 31) - 1


def normalise_document(text: str) -> str:
    """The text a model trains on: clean, with paragraphs separated by one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_EXTRA_FOLD)
    # Control and format characters (category C*) other than newline and tab: a stray
    # form feed or zero-width space would become a symbol of the model's alphabet.
    text = "".join(
        ch for ch in text if ch in "\n\t" or not unicodedata.category(ch).startswith("C")
    )
    text = clean_text(text.replace("\t", " "))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def exact_key(text: str) -> str:
    """Equal for texts that differ only in case and whitespace."""
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


class MinHasher:
    """MinHash signatures over word n-grams: the share of equal slots estimates Jaccard."""

    def __init__(self, permutations: int = 128, ngram: int = 5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.ngram = ngram
        # Universal hashes (a*x + b) mod p with p < 2**31: the product fits in 64 bits.
        self._a = rng.integers(1, _PRIME, size=(permutations, 1), dtype=np.uint64)
        self._b = rng.integers(0, _PRIME, size=(permutations, 1), dtype=np.uint64)

    def shingles(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        n = min(self.ngram, len(words)) or 1
        grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
        return np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "big")
                % _PRIME
                for g in grams
            ),
            dtype=np.uint64,
            count=len(grams),
        )

    def signature(self, text: str, chunk: int = 4096) -> np.ndarray:
        x = self.shingles(text)
        result = np.full(self._a.shape[0], _PRIME, dtype=np.uint64)
        for start in range(0, len(x), chunk):  # chunks: a novel has ~10**5 shingles
            hashed = (self._a * x[None, start : start + chunk] + self._b) % np.uint64(_PRIME)
            np.minimum(result, hashed.min(axis=1), out=result)
        return result


@dataclass(frozen=True)
class SourceInfo:
    """Where a document came from, for the manifest (URL, checksum of what was downloaded)."""

    url: str
    sha256: str = ""
    fetched: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildConfig:
    name: str
    language: str
    source: str  # one line: what the documents are and where they came from
    licence: str
    valid_fraction: float = 0.1
    seed: int = 0
    near_duplicate: float = 0.8  # estimated Jaccard of word 5-grams at which a copy is dropped
    min_chars: int = 500  # shorter documents are fragments (an error page, a stub): dropped

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError("valid_fraction must be between 0 and 1 (exclusive)")
        if not 0.0 < self.near_duplicate <= 1.0:
            raise ValueError("near_duplicate must be in (0, 1]")


def in_validation(title: str, fraction: float, seed: int = 0) -> bool:
    return _split_hash(title, seed) < fraction


def _split_hash(title: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\0{title}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class CorpusTooSmallError(ValueError):
    """Too few distinct documents to hold any out: crawl more before building."""


def build_corpus(
    documents: Iterable[Document],
    out_dir: Path,
    config: BuildConfig,
    *,
    sources: Mapping[str, SourceInfo] | None = None,
    progress: bool = True,
) -> CorpusManifest:
    """Normalise, de-duplicate, split by document and write the corpus; returns its manifest.

    `sources` maps a document's title to where it came from. Raises CorpusTooSmallError when
    fewer than two distinct documents remain (a split by document needs one on each side).
    """
    sources = sources or {}
    hasher = MinHasher(seed=config.seed)
    kept: list[Document] = []
    signatures: list[np.ndarray] = []
    exact: dict[str, str] = {}
    titles: set[str] = set()
    dropped: list[dict[str, object]] = []
    # Reading and hashing is the slow part (~0.6 MB/s of text on one core): show it.
    bar = tqdm(
        documents, desc=f"{config.name}: clean and de-duplicate", unit="doc", disable=not progress
    )
    for doc in bar:
        text = normalise_document(doc.text)
        title = _unique(" ".join(doc.title.split()) or "untitled", titles)
        if len(text) < config.min_chars:
            dropped.append({"title": title, "reason": f"{len(text)} chars < {config.min_chars}"})
            continue
        key = exact_key(text)
        if key in exact:
            dropped.append({"title": title, "reason": "exact copy", "of": exact[key]})
            continue
        sig = hasher.signature(text)
        if signatures:
            similarity = (np.stack(signatures) == sig).mean(axis=1)
            best = int(similarity.argmax())
            if similarity[best] >= config.near_duplicate:
                dropped.append(
                    {
                        "title": title,
                        "reason": f"near copy (Jaccard ~{similarity[best]:.2f})",
                        "of": kept[best].title,
                    }
                )
                continue
        exact[key] = title
        signatures.append(sig)
        titles.add(title)
        kept.append(Document(title, text))
    if len(kept) < 2:
        raise CorpusTooSmallError(
            f"{len(kept)} distinct document(s) after de-duplication: a corpus split by document "
            "needs at least two (fetch more, e.g. a higher --limit or --max-mb)"
        )
    held_out = _held_out(kept, config)
    manifest = CorpusManifest(
        name=config.name,
        language=config.language,
        source=config.source,
        licence=config.licence,
        split_rule=(
            f"whole documents; validation when sha256(seed={config.seed}, title) < "
            f"{config.valid_fraction} (at least one document on each side); exact and near "
            f"copies (MinHash Jaccard >= {config.near_duplicate}) and documents under "
            f"{config.min_chars} chars dropped"
        ),
    )
    manifest.sources = {doc.title: _source_json(sources.get(doc.title)) for doc in kept}
    manifest.dropped = dropped
    return write_corpus(
        kept, out_dir, held_out=held_out, manifest=manifest, total=len(kept), progress=progress
    )


def _held_out(docs: Sequence[Document], config: BuildConfig) -> set[str]:
    scores = {doc.title: _split_hash(doc.title, config.seed) for doc in docs}
    held = {t for t, s in scores.items() if s < config.valid_fraction}
    ranked = sorted(scores, key=scores.__getitem__)
    if not held:  # a small corpus: still hold out the document closest to the rule
        held = {ranked[0]}
    if len(held) == len(docs):
        held.discard(ranked[-1])
    return held


def _unique(title: str, taken: set[str]) -> str:
    if title not in taken:
        return title
    n = 2
    while f"{title} ({n})" in taken:
        n += 1
    return f"{title} ({n})"


def _source_json(info: SourceInfo | None) -> dict[str, object]:
    if info is None:
        return {}
    out: dict[str, object] = {"url": info.url}
    if info.sha256:
        out["sha256"] = info.sha256
    if info.fetched:
        out["fetched"] = info.fetched
    out.update(info.extra)
    return out
