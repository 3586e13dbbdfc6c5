"""Corpus BLEU-4 against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from training.captioner.bleu import caption_bleu, closest_length, corpus_bleu, ngrams


def t(text: str) -> list[str]:
    return text.split()


def test_perfect_match_is_one() -> None:
    score = corpus_bleu([t("a cat sits on the mat")], [[t("a cat sits on the mat")]])
    assert score.bleu == 1.0
    assert score.precisions == (1.0, 1.0, 1.0, 1.0) and score.brevity_penalty == 1.0
    # Matching any one of several references is enough.
    score = caption_bleu(["A cat sits on the mat."], [["A dog.", "a cat sits on the mat ."]])
    assert score.bleu == 1.0


def test_no_four_gram_in_common_is_zero() -> None:
    # Every word and the bigram "on a" match, but no 4-gram: "a cat on a", "cat on a mat"
    # against "a mat on a", "mat on a cat".
    score = corpus_bleu([t("a cat on a mat")], [[t("a mat on a cat")]])
    assert score.precisions[0] == 1.0 and score.precisions[3] == 0.0
    assert score.bleu == 0.0
    # Nothing generated at all.
    assert corpus_bleu([[]], [[t("a cat")]]).bleu == 0.0


def test_clipping() -> None:
    # Papineni et al.'s example: "the" occurs at most twice in a reference, so 2 of the
    # 7 words count.
    score = corpus_bleu(
        [t("the the the the the the the")],
        [[t("the cat is on the mat"), t("there is a cat on the mat")]],
    )
    assert score.precisions[0] == pytest.approx(2 / 7)
    assert ngrams(t("the the the"), 2) == {("the", "the"): 2}


def test_worked_example_with_brevity_penalty_clipping_and_two_references() -> None:
    hypotheses = [t("a cat sits on the red mat"), t("the dog the dog runs")]
    references = [
        [t("a cat sits on the mat"), t("there is a cat on the red mat")],
        [t("the dog runs in the big park")],
    ]
    # Sentence 1 (7 words; references of 6 and 8 words, both 1 away: the shorter, 6):
    #   1-grams: all 7 words are in a reference                          7 / 7
    #   2-grams: a cat, cat sits, sits on, on the (ref a); the red, red mat (ref b)  6 / 6
    #   3-grams: a cat sits, cat sits on, sits on the (a); on the red, the red mat (b)  5 / 5
    #   4-grams: a cat sits on, cat sits on the (a); on the red mat (b);
    #            "sits on the red" is in neither                         3 / 4
    # Sentence 2 (5 words; one reference of 7 words):
    #   1-grams: the x2 (ref has 2), dog x2 clipped to 1, runs           4 / 5
    #   2-grams: "the dog" x2 clipped to 1, "dog runs"; "dog the" no      2 / 4
    #   3-grams: "the dog runs"; "the dog the", "dog the dog" no          1 / 3
    #   4-grams: "the dog the dog", "dog the dog runs" no                 0 / 2
    # Corpus: p1 = 11/12, p2 = 8/10, p3 = 6/8, p4 = 3/6; c = 12, r = 6 + 7 = 13.
    # BP = exp(1 - 13/12); BLEU-4 = BP * (11/12 * 8/10 * 6/8 * 3/6) ** (1/4) = 0.66626...
    score = corpus_bleu(hypotheses, references)
    assert score.precisions == pytest.approx((11 / 12, 8 / 10, 6 / 8, 3 / 6))
    assert (score.hypothesis_length, score.reference_length) == (12, 13)
    assert score.brevity_penalty == pytest.approx(math.exp(1 - 13 / 12))
    expected = math.exp(1 - 13 / 12) * (11 / 12 * 8 / 10 * 6 / 8 * 3 / 6) ** 0.25
    assert score.bleu == pytest.approx(expected)
    assert score.bleu == pytest.approx(0.66626, abs=1e-5)


def test_closest_reference_length() -> None:
    refs = [t("a b c d e f"), t("a b c d e f g h")]
    assert closest_length(7, refs) == 6  # a tie goes to the shorter
    assert closest_length(8, refs) == 8
    assert closest_length(2, refs) == 6


def test_longer_hypotheses_are_not_penalised() -> None:
    score = corpus_bleu([t("a cat sits on the mat today")], [[t("a cat sits on the mat")]])
    assert score.brevity_penalty == 1.0
    assert score.precisions[0] == pytest.approx(6 / 7)


def test_tokenises_captions_like_the_vocabulary() -> None:
    # "Mat." is "mat" and "." after tokenisation: the punctuation counts as a token.
    assert caption_bleu(["A cat on the Mat."], [["a cat on the mat ."]]).bleu == 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="reference lists"):
        corpus_bleu([t("a")], [])
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu([t("a")], [[]])
