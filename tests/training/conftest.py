"""Fixtures of the training tests: the captioner's encoder, converted once per session, and
the committed captioners."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def encoder_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.captioner import encoder

    out = tmp_path_factory.mktemp("encoder") / "efficientnet_lite0.weights.h5"
    assert encoder.main(["--out", str(out)]) == 0
    return out


@cache
def committed_captioner(version: int) -> dict[str, Any]:
    """A committed captioner version: its path, loaded SavedModel, card and vocabulary.
    Loaded once per test process (seconds each): the tests only read it."""
    import tensorflow as tf

    from tests.conftest import default_model
    from training.captioner.vocab import WordVocab

    path = default_model("captioner", version)
    extra = path / "assets.extra"
    return {
        "path": path,
        "loaded": tf.saved_model.load(str(path)),
        "card": json.loads((extra / "model_card.json").read_text()),
        "vocab": WordVocab.load(extra / "vocab.json"),
    }
