"""The committed default GPT-2s: held-out figures in the card, better than the char-LSTM."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import default_model
from training.gpt2.tokenizer import decode, encode, end_id, load

DEFAULTS = {
    "gpt2_en": ("kjv_en", "And it came to pass, when the king"),
    "gpt2_fr": ("segond_fr", "Et il arriva que le roi"),
}


@pytest.fixture(scope="module", params=sorted(DEFAULTS))
def model(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = default_model(request.param)
    return {
        "name": request.param,
        "path": path,
        "card": json.loads((path / "assets.extra" / "model_card.json").read_text()),
        "tokenizer": load(path / "assets.extra" / "tokenizer.json"),
        "generate": tf.saved_model.load(str(path)).signatures["generate"],
    }


def test_card_reports_held_out_figures_and_beats_the_char_lstm(model: dict[str, Any]) -> None:
    card = model["card"]
    corpus, _ = DEFAULTS[model["name"]]
    assert card["kind"] == "gpt2" and card["training_corpus"]["name"] == corpus
    loss = card["held_out_loss"]
    assert loss["perplexity"] == pytest.approx(math.exp(loss["nats_per_token"]), rel=1e-3)
    assert loss["bits_per_char"] == pytest.approx(loss["nats_per_char"] / math.log(2), rel=1e-3)
    assert loss["chars"] == card["training_corpus"]["valid_chars"]
    baseline = loss["char_lstm_baseline"]
    assert baseline["gpt2_better"] and loss["nats_per_char"] < baseline["nats_per_char"]


def test_tokenizer_is_the_trained_byte_level_bpe(model: dict[str, Any]) -> None:
    tok, card = model["tokenizer"], model["card"]
    assert tok.get_vocab_size() == card["tokenizer"]["size"] == card["architecture"]["vocab_size"]
    assert end_id(tok) == card["tokenizer"]["end_id"]
    text = "L'Éternel dit à Moïse: « ô » 🙂\x07\r\n"
    assert decode(tok, encode(tok, text)) == text


def test_generates_reproducible_text_in_the_corpus_language(model: dict[str, Any]) -> None:
    _, prompt = DEFAULTS[model["name"]]
    ids = encode(model["tokenizer"], prompt)

    def run(seed: int) -> list[int]:
        out = model["generate"](
            prompt_ids=tf.constant([ids], tf.int32),
            prompt_lengths=tf.constant([len(ids)]),
            max_new_tokens=tf.constant([40]),
            temperature=tf.constant([0.7]),
            top_k=tf.constant([0]),
            top_p=tf.constant([0.95]),
            seed=tf.constant([seed], tf.int64),
        )
        n = int(out["lengths"][0])
        return [int(t) for t in np.asarray(out["token_ids"])[0, :n]]

    a = run(3)
    assert a == run(3) and a != run(4)
    text = decode(model["tokenizer"], a)
    words = [w for w in text.split() if w.isalpha()]
    assert len(words) >= 10
