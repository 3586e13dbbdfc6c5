"""Export a captioner (encoder + decoder + beam search) under the `captioner` contract.

`serving_default`: `image_bytes: string[B]` (JPEG, PNG, WebP, GIF or BMP bytes, decoded,
centre-cropped and resized in the graph) -> `captions: string[B, K]`,
`log_probs: float32[B, K]`, best first. Beam width K, maximum length and length
normalisation are fixed here, at export time; `caption_beam` takes the beam width
per image as a second input, for clients that choose it. `feed_image` and
`inference_step` are Show and Tell's two entry points, for a beam search run by
the client one word per call (the reference that bench/caption.py measures). The
whole search is one graph, so TF Serving answers a batch with one RPC.

A scene captioner (`features="scene"`, the default since issue 20) has a fourth
signature, `caption_scene`: `image_bytes`, `detections: float32[B, 16, 6]` (the
people and cat faces caption-service's OpenCV cascades found; `scene.py`) and
`beam_size`. The other signatures see no detections: they still name subjects,
places and second subjects, but no people the ImageNet classes do not show.
`assets.extra/` carries the vocabulary and the model card that caption-service reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from talkative_common.detectors import KINDS, MAX_DETECTIONS, ROW_SIZE
from training.captioner.decoder import FEATURE_KINDS, DecoderStep, decode, encoder_features
from training.captioner.encoder import images_from_bytes
from training.captioner.scene import SceneEncoder, no_detections
from training.captioner.vocab import WordVocab

DEFAULT_BEAM_SIZE = 3  # Show and Tell's
DEFAULT_MAX_LEN = 20
# A second signature: image_bytes + beam_size (int32[B]) -> the same outputs.
BEAM_SIGNATURE = "caption_beam"
# A scene captioner's: image_bytes + detections + beam_size -> the same outputs.
SCENE_SIGNATURE = "caption_scene"


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
        features: str = "pooled",
    ) -> None:
        super().__init__(name="captioner")
        if features not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {features!r}; one of {sorted(FEATURE_KINDS)}")
        self.features = features
        self.encoder, self.decoder = encoder, decoder
        # A scene captioner's encoder takes any size and returns its feature map.
        self.scene = SceneEncoder(encoder) if features == "scene" else None
        self.words = tf.Variable(list(vocab.words), trainable=False, name="words")
        self.beam_size, self.max_len, self.length_alpha = beam_size, max_len, length_alpha
        # The state's width is known here, and TF Serving's warm-up needs full shapes.
        units = decoder.get_layer("lstm").cell.units
        self.inference_step = tf.function(
            self._inference_step,
            input_signature=[
                tf.TensorSpec([None], tf.int32, name="input_feed"),
                tf.TensorSpec([None, units], tf.float32, name="state_h"),
                tf.TensorSpec([None, units], tf.float32, name="state_c"),
            ],
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def caption(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._caption(image_bytes, self.beam_size)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            tf.TensorSpec([None, MAX_DETECTIONS, ROW_SIZE], tf.float32, name="detections"),
            tf.TensorSpec([None], tf.int32, name="beam_size"),
        ]
    )
    def caption_scene(
        self, image_bytes: tf.Tensor, detections: tf.Tensor, beam_size: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """A scene captioner with the detections caption-service found (`scene.py`)."""
        return self._caption(image_bytes, beam_size, detections)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            tf.TensorSpec([None], tf.int32, name="beam_size"),
        ]
    )
    def caption_beam(self, image_bytes: tf.Tensor, beam_size: tf.Tensor) -> dict[str, tf.Tensor]:
        """The same with a beam width per image (`talkative caption --beam-size`).

        K is the largest width asked; an image's results past its own width are empty.
        """
        return self._caption(image_bytes, beam_size)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def feed_image(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """Show and Tell's `feed_image`: photos -> the decoder's first LSTM state."""
        h, c = DecoderStep(self.decoder).initial_state(self._features(image_bytes, None))
        return {"state_h": h, "state_c": c}

    def _inference_step(
        self, input_feed: tf.Tensor, state_h: tf.Tensor, state_c: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """Show and Tell's `inference_step`: one word for every partial caption, state fed back.

        What a client-side beam search calls once per word (bench/caption.py compares it
        with the in-graph search).
        """
        log_probs, (h, c) = DecoderStep(self.decoder)(input_feed, (state_h, state_c))
        return {"log_probs": log_probs, "state_h": h, "state_c": c}

    def _features(self, image_bytes: tf.Tensor, detections: tf.Tensor | None) -> tf.Tensor:
        if self.scene is not None:
            if detections is None:
                detections = no_detections(image_bytes)
            return self.scene(image_bytes, detections)
        outputs = self.encoder(images_from_bytes(image_bytes), training=False)
        return encoder_features(outputs, self.features)

    def _caption(
        self,
        image_bytes: tf.Tensor,
        beam_size: int | tf.Tensor,
        detections: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        features = self._features(image_bytes, detections)
        result = decode(
            self.decoder,
            features,
            beam_size=beam_size,
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
    signatures = {
        "serving_default": captioner.caption.get_concrete_function(),
        BEAM_SIGNATURE: captioner.caption_beam.get_concrete_function(),
        "feed_image": captioner.feed_image.get_concrete_function(),
        "inference_step": captioner.inference_step.get_concrete_function(),
    }
    if captioner.scene is not None:
        signatures[SCENE_SIGNATURE] = captioner.caption_scene.get_concrete_function()
    tf.saved_model.save(captioner, str(out_dir), signatures=signatures)
    extra = out_dir / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    vocab.save(extra / "vocab.json")
    full_card = {
        "kind": "captioner",
        "beam_size": captioner.beam_size,
        "max_len": captioner.max_len,
        "length_alpha": captioner.length_alpha,
        "features": captioner.features,
        "vocab_size": len(vocab),
        "parameters": int(captioner.encoder.count_params() + captioner.decoder.count_params()),
        **card,
    }
    if captioner.scene is not None:
        # What caption-service reads to run the cascades and call `caption_scene`.
        full_card["detections"] = {
            "signature": SCENE_SIGNATURE,
            "max": MAX_DETECTIONS,
            "kinds": list(KINDS),
        }
    (extra / "model_card.json").write_text(
        json.dumps(full_card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return out_dir
