"""The metric functions of bench/story_quality.py, on hand-made stories (no model runs)."""

from __future__ import annotations

import math

import pytest

from bench.story_quality import (
    Row,
    Story,
    corpus_words,
    coverage,
    distinct_n,
    is_bible,
    mean_repeated_ngram_share,
    repeated_ngram_share,
    verdicts,
    verse_share,
    words,
)


def test_words_are_lowercased_letters_with_accents() -> None:
    assert words("Et l'Éternel dit: 3 fois, NIÑO_x") == [
        "et",
        "l",
        "éternel",
        "dit",
        "fois",
        "niño",
        "x",
    ]


def test_repeated_4gram_share_per_story_then_mean() -> None:
    # "a b c d a b c d": 5 four-grams, 4 unique ("a b c d" twice).
    assert repeated_ngram_share(words("a b c d a b c d")) == pytest.approx(1 - 4 / 5)
    assert repeated_ngram_share(words("a b c d e")) == 0.0
    assert repeated_ngram_share(words("a b c")) is None  # no 4-gram: left out of the mean
    stories = [words("a b c d a b c d"), words("a b c d e"), ["a"]]
    assert mean_repeated_ngram_share(stories) == pytest.approx(0.1)
    assert math.isnan(mean_repeated_ngram_share([["a"]]))


def test_distinct_2_pools_the_stories() -> None:
    # Bigrams: (a b) (b a) | (a b): 3 in all, 2 unique; none across the story boundary.
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 2) == pytest.approx(2 / 3)
    assert math.isnan(distinct_n([["a"]], 2))


def test_coverage_counts_known_words() -> None:
    vocabulary = corpus_words("<|bible|>\nIn the beginning God created")
    assert "bible" not in vocabulary  # the style token is no word of the text
    assert coverage([["in", "the", "dog"], ["god"]], vocabulary) == pytest.approx(3 / 4)


def test_a_cut_story_drops_its_last_word() -> None:
    assert Story("the dog ran aw", cut=True).words() == ["the", "dog", "ran"]
    assert Story("the dog ran away", cut=False).words() == ["the", "dog", "ran", "away"]


def test_verse_share() -> None:
    texts = ["John 3:16 says", "no reference here", "ratio 1000:1 (four digits)"]
    assert verse_share(texts) == pytest.approx(1 / 3)


def test_bible_rows() -> None:
    kjv = {"training_corpus": {"name": "kjv_en", "source": "King James Bible"}}
    assert is_bible(None, kjv)
    assert is_bible("bible", {}) and is_bible("darby", {})
    assert not is_bible("novel", kjv)


def _row(run: str, style: str | None, rep4: float, cov: float, verse: float) -> Row:
    return Row(run, "m", 1, style, 3, 30.0, rep4, 0.9, cov, "c", verse, style == "bible", 1.0)


def test_verdicts() -> None:
    rows = [
        _row("current", "bible", 0.05, 0.95, 0.5),
        _row("current", "novel", 0.05, 0.95, 0.0),
        _row("baseline", "novel", 0.20, 0.80, 0.3),
    ]
    rep4, cov, verse = verdicts(rows)
    assert rep4.startswith("PASS") and "baseline 0/1 rows" in rep4
    assert cov.startswith("PASS")
    assert verse.startswith("PASS") and "current 1/1 rows" in verse  # the bible row is exempt
    assert verdicts([_row("current", "novel", 0.5, 0.5, 1.0)])[2].startswith("FAIL")
