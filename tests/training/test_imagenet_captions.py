"""The caption table and the synthetic posteriors the default captioner learns from."""

from __future__ import annotations

import re

import numpy as np
import pytest

from training.captioner import imagenet_captions as ic
from training.captioner import synthetic
from training.captioner.vocab import WordVocab, tokenize


def test_every_class_has_a_clean_phrase_and_captions() -> None:
    for i in range(ic.NUM_CLASSES):
        phrase = ic.phrase(i)
        assert not re.search(r"[()/]| or ", phrase), (i, phrase)
        captions = ic.specific_captions(i)
        assert captions and all(phrase in c and c.endswith(".") for c in captions), i
        assert len(set(captions)) == len(captions)


def test_groups_do_not_overlap_and_cover_the_animals() -> None:
    groups = ic.group_of()  # raises if a class is in two groups
    assert len(groups) == ic.NUM_CLASSES
    assert all(groups[i].name != "object" for i in range(398))  # 0..397 are animals
    assert groups[281].hypernym == "a cat" and groups[207].hypernym == "a dog"


@pytest.mark.parametrize(
    ("index", "phrase"),
    [
        (281, "a tabby cat"),
        (282, "a tiger cat"),
        (207, "a Golden Retriever dog"),
        (153, "a Maltese dog"),
        (950, "an orange"),
        (46, "a European green lizard"),
        (21, "a kite"),
        (608, "jeans"),
        (967, "a cup of espresso coffee"),
    ],
)
def test_phrases_read_naturally(index: int, phrase: str) -> None:
    assert ic.phrase(index) == phrase


def test_people_are_named_through_what_they_wear_or_do() -> None:
    assert ic.specific_captions(652)[0] == "a person wearing a military uniform."
    assert ic.specific_captions(795)[0] == "a person skiing."
    assert ic.hypernym_captions(400) == ("a person.", "a photo of a person.")
    assert ic.hypernym_captions(999) is None  # toilet paper has no group phrase


def test_the_vocabulary_holds_every_caption_without_unknown_words() -> None:
    vocab = WordVocab.build(ic.all_captions())
    index = vocab.index
    assert all(w in index for c in ic.all_captions() for w in tokenize(c))
    assert 1000 < len(vocab) < 2000


@pytest.fixture(scope="module")
def table() -> synthetic.ClassTable:
    # Classifier weights where classes 281..285 (cats) are alike: enough for the rules.
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(64, ic.NUM_CLASSES))
    weights[:, 281:286] = weights[:, [281]] + 0.1 * rng.normal(size=(64, 5))
    return synthetic.ClassTable.build(weights)


def _probs(mass: dict[int, float]) -> np.ndarray:
    p = np.full(ic.NUM_CLASSES, (1.0 - sum(mass.values())) / (ic.NUM_CLASSES - len(mass)))
    for i, m in mass.items():
        p[i] = m
    return p


def test_teacher_names_the_class_it_is_sure_of(table: synthetic.ClassTable) -> None:
    assert synthetic.teacher(_probs({281: 0.8, 282: 0.1}), table) == (281, False)


def test_teacher_names_the_group_when_it_hesitates_inside_it(
    table: synthetic.ClassTable,
) -> None:
    # chelsea's real posterior: tiger cat .39, Egyptian Mau .37, tabby .16 -> "a cat".
    assert synthetic.teacher(_probs({282: 0.39, 285: 0.37, 281: 0.16}), table) == (282, True)


def test_teacher_keeps_the_class_when_the_doubt_is_outside_its_group(
    table: synthetic.ClassTable,
) -> None:
    # A daisy (.30) against a bee and a mushroom: the flower group holds no more than it.
    assert synthetic.teacher(_probs({985: 0.3, 309: 0.1, 947: 0.1}), table) == (985, False)


def test_neighbours_come_from_the_classifier_weights(table: synthetic.ClassTable) -> None:
    assert set(table.neighbours[281][:4]) == {282, 283, 284, 285}


def test_samples_are_distributions_with_captions(table: synthetic.ClassTable) -> None:
    rng = np.random.default_rng(1)
    probs, captions = synthetic.sample_batch(rng, 64, table)
    assert probs.shape == (64, ic.NUM_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    known = set(ic.all_captions())
    assert all(c in known for c in captions)
    again = synthetic.sample_batch(np.random.default_rng(1), 64, table)
    assert again[1] == captions and np.array_equal(again[0], probs)  # seeded
