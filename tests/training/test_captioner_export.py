"""The exported captioner: image bytes in, ranked captions out, in one graph TF Serving loads."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from training import serving_warmup
from training.captioner import encoder
from training.captioner.decoder import (
    DecoderConfig,
    build_decoder,
    masked_loss,
    pad_batch,
    teacher_forcing,
)
from training.captioner.export import Captioner, export_captioner
from training.captioner.vocab import WordVocab

CAPTIONS = {
    "chelsea": "A cat lying on a table.",
    "coffee": "A cup of coffee on a saucer.",
    "rocket": "A rocket on the launch pad.",
}


def photo(name: str, fmt: str) -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def exported(encoder_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tf.keras.utils.set_random_seed(0)
    enc = encoder.load_encoder(encoder_weights)
    images = encoder.images_from_bytes(tf.constant([photo(n, "PNG") for n in CAPTIONS]))
    features = enc(images, training=False)["pooled"]
    vocab = WordVocab.build(CAPTIONS.values())
    tokens = pad_batch([vocab.encode(c, max_len=20) for c in CAPTIONS.values()])
    decoder = build_decoder(DecoderConfig(len(vocab), embed_dim=16, units=32, dropout=0.0))
    optimizer = tf.keras.optimizers.Adam(0.01)
    inputs, targets = teacher_forcing(tf.constant(tokens))

    @tf.function
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = masked_loss(targets, decoder([features, inputs], training=True))
        grads = tape.gradient(loss, decoder.trainable_variables)
        optimizer.apply(grads, decoder.trainable_variables)
        return loss

    for _ in range(200):
        loss = train_step()
    assert float(loss) < 0.05
    version = tmp_path_factory.mktemp("models") / "captioner" / "1"
    export_captioner(
        Captioner(enc, decoder, vocab, beam_size=3, max_len=12),
        vocab,
        version,
        {"name": "captioner", "training_corpus": {"name": "three photos"}},
    )
    serving_warmup.write_warmup(version, (1, 2))
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
