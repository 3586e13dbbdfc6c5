"""Show and Tell's decoder: image features set the LSTM's first state, then words follow.

Training is teacher forcing: the model reads `<start> w1 .. wn` and is scored on
predicting `w1 .. wn <end>`, with padding masked out of the loss. Decoding runs the
same layers one word at a time through `DecoderStep`, which `beam_search` drives
inside the graph.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from training.captioner.beam_search import BeamResult, beam_search
from training.captioner.scene import SCENE_DIM
from training.captioner.vocab import END_ID, PAD_ID, START_ID, WordVocab

# What of the encoder's output the decoder reads: the pooled image features (Show and
# Tell's choice, for training on image+caption data) or the ImageNet class
# probabilities (the default captioner's, trained without such data).
# "scene" (the default captioner's since issue 20): the class probabilities of the whole
# photo and of a second subject, people, cats and place (training/captioner/scene.py).
FEATURE_KINDS = {"pooled": 1280, "class_probs": 1000, "scene": SCENE_DIM}


@dataclass(frozen=True)
class DecoderConfig:
    vocab_size: int
    feature_dim: int = 1280
    features: str = "pooled"
    embed_dim: int = 256
    units: int = 512
    dropout: float = 0.3

    def __post_init__(self) -> None:
        # feature_dim stays free (small test decoders); exported ones match FEATURE_KINDS.
        if self.features not in FEATURE_KINDS:
            raise ValueError(
                f"unknown feature kind {self.features!r}; one of {sorted(FEATURE_KINDS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecoderConfig:
        return cls(**d)


def encoder_features(outputs: dict[str, tf.Tensor], kind: str) -> tf.Tensor:
    """The decoder's input from the encoder's outputs ({"pooled", "logits"})."""
    if kind == "class_probs":
        return tf.nn.softmax(outputs["logits"], axis=-1)
    if kind == "pooled":
        return outputs["pooled"]
    if kind == "scene":
        raise ValueError("scene features need the photo and its detections: scene.SceneEncoder")
    raise ValueError(f"unknown feature kind {kind!r}; one of {sorted(FEATURE_KINDS)}")


def build_decoder(cfg: DecoderConfig) -> keras.Model:
    """(features [B, F], tokens [B, T]) -> logits [B, T, V] of the next word at each step."""
    features = keras.Input((cfg.feature_dim,), name="features")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    image = keras.layers.Dropout(cfg.dropout, name="feature_dropout")(features)
    # Class probabilities sum to one, so a default-sized kernel would start every image at
    # nearly the same state; a unit-variance kernel gives each class its own from step one.
    init = "glorot_uniform" if cfg.features == "pooled" else keras.initializers.RandomNormal(0, 1)
    h0 = keras.layers.Dense(cfg.units, activation="tanh", kernel_initializer=init, name="init_h")(
        image
    )
    c0 = keras.layers.Dense(cfg.units, kernel_initializer=init, name="init_c")(image)
    x = keras.layers.Embedding(cfg.vocab_size, cfg.embed_dim, name="embed")(tokens)
    seq = keras.layers.LSTM(cfg.units, return_sequences=True, name="lstm")(
        x, initial_state=[h0, c0]
    )
    seq = keras.layers.Dropout(cfg.dropout, name="output_dropout")(seq)
    logits = keras.layers.Dense(cfg.vocab_size, name="logits")(seq)
    return keras.Model([features, tokens], logits, name="caption_decoder")


def pad_batch(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """Right-pad token id lists with <pad> into one int32 array."""
    width = max(len(s) for s in sequences)
    out = np.full((len(sequences), width), PAD_ID, np.int32)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def masked_loss(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy in nats per real token: <pad> targets count for nothing."""
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    return tf.reduce_sum(ce * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def teacher_forcing(tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[<start> w1 .. wn <end> <pad>..] -> (inputs without the last, targets without <start>)."""
    return tokens[:, :-1], tokens[:, 1:]


class DecoderStep:
    """One word for every beam with the trained layers: what beam search calls each step."""

    def __init__(self, model: keras.Model) -> None:
        self.init_h = model.get_layer("init_h")
        self.init_c = model.get_layer("init_c")
        self.embed = model.get_layer("embed")
        self.cell = model.get_layer("lstm").cell
        self.logits = model.get_layer("logits")

    def initial_state(self, features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.init_h(features), self.init_c(features)

    def __call__(
        self, tokens: tf.Tensor, state: tuple[tf.Tensor, tf.Tensor]
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        h, (h, c) = self.cell(self.embed(tokens), list(state), training=False)
        return tf.nn.log_softmax(self.logits(h)), (h, c)


def decode(
    model: keras.Model,
    features: tf.Tensor,
    *,
    beam_size: int | tf.Tensor = 3,
    max_len: int = 20,
    length_alpha: float = 0.0,
) -> BeamResult:
    """The `beam_size` best captions (token ids) for each row of `features`."""
    step = DecoderStep(model)
    return beam_search(
        step,
        step.initial_state(features),
        tf.shape(features)[0],
        beam_size=beam_size,
        max_len=max_len,
        start_id=START_ID,
        end_id=END_ID,
        pad_id=PAD_ID,
        length_alpha=length_alpha,
    )


def captions(result: BeamResult, vocab: WordVocab) -> list[list[tuple[str, float]]]:
    """BeamResult -> per input, [(caption text, log-probability)] best first."""
    tokens, lengths, log_probs = (
        x.numpy() for x in (result.tokens, result.lengths, result.log_probs)
    )
    return [
        [
            (vocab.decode(tokens[b, j, : lengths[b, j]]), float(log_probs[b, j]))
            for j in range(tokens.shape[1])
        ]
        for b in range(tokens.shape[0])
    ]
