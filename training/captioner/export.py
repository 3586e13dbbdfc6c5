"""Export a captioner (encoder + decoder + beam search) under the `captioner` contract.

`serving_default`: `image_bytes: string[B]` (JPEG, PNG, GIF or BMP bytes, decoded,
centre-cropped and resized in the graph) -> `captions: string[B, K]`,
`log_probs: float32[B, K]`, best first. Beam width K, maximum length and length
normalisation are fixed here, at export time. The whole search is one graph, so
TF Serving answers a batch with one RPC. `assets.extra/` carries the vocabulary
and the model card that caption-service reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from training.captioner.decoder import decode
from training.captioner.encoder import images_from_bytes
from training.captioner.vocab import WordVocab

DEFAULT_BEAM_SIZE = 3  # Show and Tell's
DEFAULT_MAX_LEN = 20


class Captioner(tf.Module):
    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        vocab: WordVocab,
        *,
        beam_size: int = DEFAULT_BEAM_SIZE,
        max_len: int = DEFAULT_MAX_LEN,
        length_alpha: float = 0.0,
    ) -> None:
        super().__init__(name="captioner")
        self.encoder, self.decoder = encoder, decoder
        self.words = tf.Variable(list(vocab.words), trainable=False, name="words")
        self.beam_size, self.max_len, self.length_alpha = beam_size, max_len, length_alpha

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def caption(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        features = self.encoder(images_from_bytes(image_bytes), training=False)["pooled"]
        result = decode(
            self.decoder,
            features,
            beam_size=self.beam_size,
            max_len=self.max_len,
            length_alpha=self.length_alpha,
        )
        words = tf.gather(self.words, result.tokens)
        kept = tf.sequence_mask(result.lengths, self.max_len)
        text = tf.strings.reduce_join(tf.where(kept, words + " ", ""), axis=-1)
        # Punctuation is a token of its own: glue it back to the word before it.
        text = tf.strings.regex_replace(tf.strings.strip(text), r" ([.,!?;:])", r"\1")
        return {"captions": text, "log_probs": result.log_probs}


def export_captioner(
    captioner: Captioner, vocab: WordVocab, out_dir: Path, card: dict[str, Any]
) -> Path:
    """Write the SavedModel, `assets.extra/vocab.json` and `assets.extra/model_card.json`."""
    out_dir = Path(out_dir)
    if (out_dir / "saved_model.pb").exists():
        raise FileExistsError(f"{out_dir} already holds a model; versions are never overwritten")
    fn = captioner.caption.get_concrete_function()
    tf.saved_model.save(captioner, str(out_dir), signatures={"serving_default": fn})
    extra = out_dir / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    vocab.save(extra / "vocab.json")
    full_card = {
        "kind": "captioner",
        "beam_size": captioner.beam_size,
        "max_len": captioner.max_len,
        "length_alpha": captioner.length_alpha,
        "vocab_size": len(vocab),
        "parameters": int(captioner.encoder.count_params() + captioner.decoder.count_params()),
        **card,
    }
    (extra / "model_card.json").write_text(
        json.dumps(full_card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return out_dir
