"""The decoder's training loop, shared by the data-set trainer and the default captioner.

Teacher forcing on (features, tokens) batches, Adam with cosine decay, gradient
clipping, a progress bar, held-out loss every `eval_every` steps, and the weights
of the best held-out step restored at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from training.captioner.decoder import masked_loss, teacher_forcing
from training.captioner.vocab import PAD_ID

# step -> (features [B, F] float32, tokens [B, T] int32 with <start> .. <end> <pad>..)
BatchFn = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass
class History:
    train: list[tuple[int, float]] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)

    @property
    def best_valid(self) -> float | None:
        return min((loss for _, loss in self.valid), default=None)


def mean_loss(
    decoder: keras.Model, features: np.ndarray, tokens: np.ndarray, batch_size: int = 256
) -> float:
    """Held-out loss in nats per real token (padding excluded), over every row."""
    total, count = 0.0, 0.0
    for start in range(0, len(features), batch_size):
        toks = tf.constant(tokens[start : start + batch_size])
        inputs, targets = teacher_forcing(toks)
        logits = decoder([tf.constant(features[start : start + batch_size]), inputs])
        n = float(tf.reduce_sum(tf.cast(targets != PAD_ID, tf.float32)))
        total += float(masked_loss(targets, logits)) * n
        count += n
    return total / max(count, 1.0)


def fit(
    decoder: keras.Model,
    batches: BatchFn,
    *,
    steps: int,
    lr: float = 2e-3,
    clip_norm: float = 5.0,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    eval_every: int = 200,
    desc: str = "train captioner",
) -> History:
    from tqdm import tqdm

    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=clip_norm)

    @tf.function(reduce_retracing=True)
    def train_step(features: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
        inputs, targets = teacher_forcing(tokens)
        with tf.GradientTape() as tape:
            loss = masked_loss(targets, decoder([features, inputs], training=True))
        grads = tape.gradient(loss, decoder.trainable_variables)
        optimizer.apply(grads, decoder.trainable_variables)
        return loss

    history = History()
    best: tuple[float, list[np.ndarray]] | None = None
    bar = tqdm(total=steps, desc=desc, unit="step")
    for step in range(1, steps + 1):
        features, tokens = batches(step)
        loss = float(train_step(tf.constant(features), tf.constant(tokens)))
        history.train.append((step, loss))
        bar.update()
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if valid is not None and (step % eval_every == 0 or step == steps):
            held_out = mean_loss(decoder, *valid)
            history.valid.append((step, held_out))
            tqdm.write(f"step {step}: held-out {held_out:.4f} nats/word")
            if best is None or held_out < best[0]:
                best = (held_out, decoder.get_weights())
    bar.close()
    if best is not None:
        decoder.set_weights(best[1])
    return history
