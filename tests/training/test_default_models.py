"""The committed default char-LSTMs: held-out loss in the card, readable, reproducible output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import CORPORA, default_model
from training.char_lstm.quality import corpus_vocabulary, generate_batch, known_word_share
from training.char_lstm.vocab import CharVocab

DEFAULTS = {
    # name: (corpus, held-out ceiling in nats/char, prompts)
    "char_lstm_en": ("kjv_en", 1.35, ["And it came to pass, when the king", "The LORD is my"]),
    "char_lstm_fr": ("segond_fr", 1.45, ["Et il arriva que le roi", "L'Éternel dit à Moïse"]),
}


@pytest.fixture(scope="module", params=sorted(DEFAULTS))
def model(request: pytest.FixtureRequest) -> dict[str, Any]:
    import tensorflow as tf

    path = default_model(request.param)
    corpus, ceiling, prompts = DEFAULTS[request.param]
    return {
        "name": request.param,
        "path": path,
        "ceiling": ceiling,
        "prompts": prompts,
        "corpus": CORPORA / corpus,
        "loaded": tf.saved_model.load(str(path)),
        "vocab": CharVocab.load(path / "assets.extra" / "vocab.json"),
        "card": json.loads((path / "assets.extra" / "model_card.json").read_text()),
    }


def test_card_reports_held_out_loss_under_the_target(model: dict[str, Any]) -> None:
    card = model["card"]
    assert card["name"] == model["name"] and card["kind"] == "char_lstm"
    loss = card["held_out_loss"]["nats_per_char"]
    assert 0.5 < loss <= model["ceiling"], loss
    assert card["training_corpus"]["name"] == model["corpus"].name
    assert (model["path"] / "assets.extra" / "loss_curve.png").stat().st_size > 10_000


def test_generated_words_are_corpus_words(model: dict[str, Any]) -> None:
    prompts = model["prompts"] * 2
    texts = generate_batch(
        model["loaded"],
        model["vocab"],
        prompts,
        seeds=[1, 2, 3, 4],
        max_new_tokens=300,
        temperature=0.5,
    )
    assert all(len(t) == 300 for t in texts)
    share = known_word_share(texts, corpus_vocabulary(model["corpus"] / "train.txt"))
    assert share.total > 150
    assert share.share >= 0.80, (share.share, share.unknown)


def test_same_seed_same_text_different_seed_different_text(model: dict[str, Any]) -> None:
    prompt = model["prompts"][0]
    a, b, c = generate_batch(
        model["loaded"],
        model["vocab"],
        [prompt] * 3,
        seeds=[5, 5, 6],
        max_new_tokens=120,
        temperature=0.8,
    )
    (again,) = generate_batch(
        model["loaded"], model["vocab"], [prompt], seeds=[5], max_new_tokens=120, temperature=0.8
    )
    assert a == b == again
    assert a != c
