"""The exported captioner: image bytes in, ranked captions out, in one graph TF Serving loads."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from tests.support.captioner import build_captioner, photo
from training import serving_warmup
from training.captioner.export import export_captioner
from training.captioner.vocab import WordVocab


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    version = build_captioner(tmp_path_factory.mktemp("models"))
    return {"version": version, "loaded": tf.saved_model.load(str(version))}


def test_captions_photos_in_any_format(exported: dict[str, Any]) -> None:
    serve = exported["loaded"].signatures["serving_default"]
    # Other encodings than in training (JPEG, GIF): decoding happens in the graph.
    batch = [photo("coffee", "JPEG"), photo("chelsea", "GIF"), photo("rocket", "JPEG")]
    out = serve(image_bytes=tf.constant(batch))
    captions = out["captions"].numpy().astype(str)
    log_probs = out["log_probs"].numpy()
    assert captions.shape == (3, 3) and log_probs.shape == (3, 3)
    assert captions[:, 0].tolist() == [
        "a cup of coffee on a saucer.",
        "a cat lying on a table.",
        "a rocket on the launch pad.",
    ]
    assert np.all(np.diff(log_probs, axis=1) <= 1e-6), "best first"
    assert np.all(log_probs[:, 0] > -1.0)


def test_fits_tf_serving(exported: dict[str, Any]) -> None:
    version = exported["version"]
    assert serving_warmup.check_version(version) == []
    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    assert card["kind"] == "captioner" and card["beam_size"] == 3 and card["max_len"] == 12
    assert 4_600_000 < card["parameters"] < 5_000_000
    assert WordVocab.load(version / "assets.extra" / "vocab.json").words[4] == "a"


def test_versions_are_never_overwritten(exported: dict[str, Any]) -> None:
    with pytest.raises(FileExistsError):
        export_captioner(None, WordVocab(()), exported["version"], {})  # type: ignore[arg-type]
