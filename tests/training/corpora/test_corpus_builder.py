"""The corpus builder: normalised text, copies dropped, whole documents split, a true manifest."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from training.corpora.builder import (
    BuildConfig,
    CorpusTooSmallError,
    MinHasher,
    SourceInfo,
    build_corpus,
    in_validation,
    normalise_document,
)
from training.corpora.common import Document

SENTENCE = (
    "the king and queen of a small country walked through the dark forest to find an old "
    "man who lived alone by the river with his dog and three white horses while the rain "
    "fell softly on the roofs of the town and children sang in the square until night came "
    "and every window was lit by a candle burning slowly"
)
WORDS = SENTENCE.split()


def prose(seed: int, words: int = 400) -> str:
    """Distinct documents: the same small vocabulary in a different order per seed."""
    rng = random.Random(seed)
    sentences, sentence = [], []
    for _ in range(words):
        sentence.append(rng.choice(WORDS))
        if len(sentence) > 8 and rng.random() < 0.2:
            sentences.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def config(**overrides: object) -> BuildConfig:
    values: dict = {
        "name": "test_corpus",
        "language": "en",
        "source": "generated prose",
        "licence": "CC0",
        "valid_fraction": 0.25,
    }
    values.update(overrides)
    return BuildConfig(**values)


def test_normalise_folds_typography_spaces_and_blank_runs() -> None:
    raw = (
        "\ufeff\u201eQuoted\u201c \u2018word\u2019 \u2014 and\u00a0\u00a0more\u2026\r\n"
        "\tTabbed\x0c line\u200b here   \r\n\r\n\r\n\r\nNext  paragraph."
    )
    assert normalise_document(raw) == (
        "\"Quoted\" 'word' - and more...\nTabbed line here\n\nNext paragraph."
    )


def test_normalise_keeps_accents_and_is_idempotent() -> None:
    text = "L\u2019\u00e9t\u00e9 \u00ab br\u00fblant \u00bb, nai\u0308ve."
    once = normalise_document(text)
    assert once == 'L\'été " brûlant ", naïve.'
    assert normalise_document(once) == once


def test_minhash_estimates_jaccard() -> None:
    hasher = MinHasher()
    a = prose(1, 2000)
    words = a.split(" ")
    edited = " ".join(w if i % 40 else w.upper() + "x" for i, w in enumerate(words))
    same = (hasher.signature(a) == hasher.signature(a)).mean()
    near = (hasher.signature(a) == hasher.signature(edited)).mean()
    far = (hasher.signature(a) == hasher.signature(prose(2, 2000))).mean()
    assert same == 1.0
    assert 0.6 < near < 0.95  # one word in 40 changed touches about 5 of every 40 5-grams
    assert far < 0.1


def test_build_drops_copies_and_fragments_and_says_why(tmp_path: Path) -> None:
    original = prose(10, 1500)
    docs = [
        Document("Alpha", original),
        Document("Beta", prose(11)),
        # The same text retyped: other case, other line breaks and spacing.
        Document("Alpha again", original.upper().replace(" ", "  ").replace("\n\n", "\n")),
        # Another edition: a new preface and a few words changed.
        Document(
            "Alpha, second edition",
            "Preface to the second edition.\n\n" + original.replace(" river ", " stream ", 3),
        ),
        Document("Stub", "404 Not Found"),
        Document("Gamma", prose(12)),
        Document("Delta", prose(13)),
    ]
    manifest = build_corpus(docs, tmp_path, config())
    dropped = {d["title"]: d for d in manifest.dropped}
    assert dropped["Alpha again"]["reason"] == "exact copy"
    assert dropped["Alpha again"]["of"] == "Alpha"
    assert str(dropped["Alpha, second edition"]["reason"]).startswith("near copy")
    assert dropped["Alpha, second edition"]["of"] == "Alpha"
    assert "chars <" in str(dropped["Stub"]["reason"])
    kept = manifest.documents["train"] + manifest.documents["valid"]
    assert sorted(kept) == ["Alpha", "Beta", "Delta", "Gamma"]


def test_split_is_by_whole_document_and_files_match_the_manifest(tmp_path: Path) -> None:
    docs = [Document(f"Book {i}", prose(100 + i)) for i in range(20)]
    sources = {d.title: SourceInfo(f"http://example/{i}", "ab" * 32) for i, d in enumerate(docs)}
    manifest = build_corpus(docs, tmp_path, config(), sources=sources)
    train, valid = manifest.documents["train"], manifest.documents["valid"]
    assert valid and train and not set(train) & set(valid)
    assert sorted(train + valid) == sorted(d.title for d in docs)
    assert set(valid) == {d.title for d in docs if in_validation(d.title, 0.25)}
    valid_text = (tmp_path / "valid.txt").read_text(encoding="utf-8")
    train_text = (tmp_path / "train.txt").read_text(encoding="utf-8")
    for doc in docs:
        body = normalise_document(doc.text)
        where = valid_text if doc.title in valid else train_text
        other = train_text if doc.title in valid else valid_text
        assert body in where and body not in other
    on_disk = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    for name, info in on_disk["files"].items():
        data = (tmp_path / name).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert info["chars"] == len(data.decode("utf-8"))
    assert on_disk["sources"]["Book 3"] == {"url": "http://example/3", "sha256": "ab" * 32}
    assert on_disk["language"] == "en" and "whole documents" in on_disk["split_rule"]


def test_split_is_stable_when_the_crawl_grows(tmp_path: Path) -> None:
    docs = [Document(f"Film {i}", prose(200 + i)) for i in range(30)]
    small = build_corpus(docs[:12], tmp_path / "small", config())
    large = build_corpus(docs, tmp_path / "large", config())
    assert set(small.documents["valid"]) <= set(large.documents["valid"])
    assert set(small.documents["train"]) <= set(large.documents["train"])


def test_two_documents_still_give_one_on_each_side(tmp_path: Path) -> None:
    manifest = build_corpus([Document("A", prose(1)), Document("B", prose(2))], tmp_path, config())
    assert len(manifest.documents["train"]) == len(manifest.documents["valid"]) == 1


def test_too_few_distinct_documents_is_a_clear_error(tmp_path: Path) -> None:
    text = prose(5)
    with pytest.raises(CorpusTooSmallError, match="at least two"):
        build_corpus([Document("A", text), Document("A copy", text)], tmp_path, config())
    assert not (tmp_path / "train.txt").exists()


def test_duplicate_titles_stay_distinct(tmp_path: Path) -> None:
    docs = [Document("Hamlet", prose(1)), Document("Hamlet", prose(2)), Document("X", prose(3))]
    manifest = build_corpus(docs, tmp_path, config())
    kept = manifest.documents["train"] + manifest.documents["valid"]
    assert sorted(kept) == ["Hamlet", "Hamlet (2)", "X"]


@pytest.mark.parametrize(
    "bad", [{"valid_fraction": 0.0}, {"valid_fraction": 1.0}, {"near_duplicate": 0.0}]
)
def test_config_is_validated(bad: dict) -> None:
    with pytest.raises(ValueError):
        config(**bad)
