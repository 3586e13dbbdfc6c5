"""A small real captioner for the tests: the real encoder, a decoder taught three photos.

The decoder learns one caption for each of scikit-image's chelsea, coffee and rocket
from their encoder features; exported under the `captioner` contract it captions those
photos (in any encoding) with their caption, and anything else with one of the three.
Trained once per test session.
"""

from __future__ import annotations

import functools
import io
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

CAPTIONS = {
    "chelsea": "A cat lying on a table.",
    "coffee": "A cup of coffee on a saucer.",
    "rocket": "A rocket on the launch pad.",
}


def photo(name: str, fmt: str = "PNG") -> bytes:
    """One of scikit-image's photos, encoded as asked."""
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(out, format=fmt)
    return out.getvalue()


@functools.cache
def _trained() -> tuple[Any, Any, Any]:
    import tensorflow as tf

    from training.captioner import encoder
    from training.captioner.decoder import (
        DecoderConfig,
        build_decoder,
        masked_loss,
        pad_batch,
        teacher_forcing,
    )
    from training.captioner.vocab import WordVocab

    tf.keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "efficientnet_lite0.weights.h5"
        encoder.convert(weights)
        enc = encoder.load_encoder(weights)
    images = encoder.images_from_bytes(tf.constant([photo(n) for n in CAPTIONS]))
    features = enc(images, training=False)["pooled"]
    vocab = WordVocab.build(CAPTIONS.values())
    tokens = pad_batch([vocab.encode(c, max_len=20) for c in CAPTIONS.values()])
    decoder = build_decoder(DecoderConfig(len(vocab), embed_dim=16, units=32, dropout=0.0))
    optimizer = tf.keras.optimizers.Adam(0.01)
    inputs, targets = teacher_forcing(tf.constant(tokens))

    @tf.function
    def train_step() -> Any:
        with tf.GradientTape() as tape:
            loss = masked_loss(targets, decoder([features, inputs], training=True))
        grads = tape.gradient(loss, decoder.trainable_variables)
        optimizer.apply(grads, decoder.trainable_variables)
        return loss

    for _ in range(200):
        loss = train_step()
    assert float(loss) < 0.05, float(loss)
    return enc, decoder, vocab


def build_captioner(repository: Path, *, beam_size: int = 3, max_len: int = 12) -> Path:
    """Export the test captioner to repository/captioner/1, warm-up requests included."""
    from training import serving_warmup
    from training.captioner.export import Captioner, export_captioner

    enc, decoder, vocab = _trained()
    version = Path(repository) / "captioner" / "1"
    export_captioner(
        Captioner(enc, decoder, vocab, beam_size=beam_size, max_len=max_len),
        vocab,
        version,
        {"name": "captioner", "language": "en", "training_corpus": {"name": "three photos"}},
    )
    serving_warmup.write_warmup(version, (1, 2), verify=False)
    return version
