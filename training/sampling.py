"""Sampling shared by every exported text model: per-row knobs, reproducible noise.

Randomness comes from a counter-based integer hash of (seed, step, token) in core
int64 ops rather than TF's stateful or batch-wide stateless generators, so a row's
text depends on its own seed only, alone or batched. The `generate` contract
(DESIGN.md) is declared once here: its signature name and inputs, batch dimension
first, and how an exported generator is saved under it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

GENERATE_SIGNATURE = "generate"
GENERATE_INPUT_SIGNATURE = [
    tf.TensorSpec([None, None], tf.int32, name="prompt_ids"),
    tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
    tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
    tf.TensorSpec([None], tf.float32, name="temperature"),
    tf.TensorSpec([None], tf.int32, name="top_k"),
    tf.TensorSpec([None], tf.float32, name="top_p"),
    tf.TensorSpec([None], tf.int64, name="seed"),
]


# `generate_controlled`: the `generate` inputs plus the repetition controls, for models
# exported with them (a SavedModel signature has no optional inputs, so the plain
# `generate` stays as it was and old clients and models keep working).
GENERATE_CONTROLLED_SIGNATURE = "generate_controlled"
CONTROL_INPUT_SIGNATURE = [
    tf.TensorSpec([None], tf.float32, name="repetition_penalty"),
    tf.TensorSpec([None], tf.int32, name="no_repeat_ngram_size"),
]
GENERATE_CONTROLLED_INPUT_SIGNATURE = GENERATE_INPUT_SIGNATURE + CONTROL_INPUT_SIGNATURE
# The largest n-gram size the graph checks; larger requests are clamped to it.
MAX_NGRAM_SIZE = 16


class GenerateInputs(NamedTuple):
    """The `generate` contract's inputs, [B] or [B, T] tensors (GENERATE_INPUT_SIGNATURE)."""

    prompt_ids: tf.Tensor
    prompt_lengths: tf.Tensor
    max_new_tokens: tf.Tensor
    temperature: tf.Tensor
    top_k: tf.Tensor
    top_p: tf.Tensor
    seed: tf.Tensor


class Controls(NamedTuple):
    """The repetition controls, [B] tensors (CONTROL_INPUT_SIGNATURE).

    repetition_penalty: CTRL's penalty on every token already in the row's text (prompt
    and generated): a positive logit is divided by it, a negative one multiplied; 1 = off.
    no_repeat_ngram_size: n > 0 bans any token that would complete an n-gram already in
    the row's text; 0 = off.
    """

    repetition_penalty: tf.Tensor
    no_repeat_ngram_size: tf.Tensor


class TextGenerator(tf.Module):
    """An exported text model's generator: `generate` is the contract's signature, and a
    model family writes `decode`, the whole decoding loop, in core TensorFlow ops."""

    @tf.function(input_signature=GENERATE_INPUT_SIGNATURE)
    def generate(
        self,
        prompt_ids: tf.Tensor,
        prompt_lengths: tf.Tensor,
        max_new_tokens: tf.Tensor,
        temperature: tf.Tensor,
        top_k: tf.Tensor,
        top_p: tf.Tensor,
        seed: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        return self.decode(
            GenerateInputs(
                prompt_ids, prompt_lengths, max_new_tokens, temperature, top_k, top_p, seed
            )
        )

    def decode(self, inputs: GenerateInputs) -> dict[str, tf.Tensor]:
        """{"token_ids": [B, N] int32, "lengths": [B] int32}: the new tokens of each row."""
        raise NotImplementedError


class ControlledTextGenerator(TextGenerator):
    """A generator that also offers `generate_controlled` (the repetition controls);
    `decode` gets `controls=None` from the plain `generate`, which then applies none."""

    @tf.function(input_signature=GENERATE_CONTROLLED_INPUT_SIGNATURE)
    def generate_controlled(
        self,
        prompt_ids: tf.Tensor,
        prompt_lengths: tf.Tensor,
        max_new_tokens: tf.Tensor,
        temperature: tf.Tensor,
        top_k: tf.Tensor,
        top_p: tf.Tensor,
        seed: tf.Tensor,
        repetition_penalty: tf.Tensor,
        no_repeat_ngram_size: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        return self.decode(
            GenerateInputs(
                prompt_ids, prompt_lengths, max_new_tokens, temperature, top_k, top_p, seed
            ),
            Controls(repetition_penalty, no_repeat_ngram_size),
        )

    def decode(
        self, inputs: GenerateInputs, controls: Controls | None = None
    ) -> dict[str, tf.Tensor]:
        raise NotImplementedError


def signature_names(generator: tf.Module) -> list[str]:
    """The contract signatures a generator is saved under (the card lists them)."""
    names = [GENERATE_SIGNATURE]
    if isinstance(generator, ControlledTextGenerator):
        names.append(GENERATE_CONTROLLED_SIGNATURE)
    return names


def save_generator(generator: tf.Module, out_dir: Path) -> Path:
    """Save a text model's generator (its `generate` method) as a new model version: a
    SavedModel under the `generate` signature, also the serving default, and under
    `generate_controlled` for a ControlledTextGenerator. A version is never overwritten
    (a non-empty `out_dir` is refused); returns its assets.extra folder, made."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SystemExit(f"{out_dir} is not empty: model versions are immutable, use a new one")
    fn = generator.generate.get_concrete_function()
    signatures = {GENERATE_SIGNATURE: fn, "serving_default": fn}
    if isinstance(generator, ControlledTextGenerator):
        signatures[GENERATE_CONTROLLED_SIGNATURE] = (
            generator.generate_controlled.get_concrete_function()
        )
    tf.saved_model.save(generator, str(out_dir), signatures=signatures)
    extra = out_dir / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    return extra


def write_model_card(extra: Path, card: Mapping[str, Any]) -> None:
    """assets.extra/model_card.json: what textgen-service lists and serves the model by."""
    (extra / "model_card.json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """32-bit avalanche hash on int64 values in [0, 2**32): products stay below 2**59."""
    for _ in range(2):
        x = tf.bitwise.bitwise_and((tf.bitwise.right_shift(x, 16) ^ x) * 0x45D9F3B, _M32)
    return tf.bitwise.right_shift(x, 16) ^ x


def row_keys(seed: tf.Tensor) -> tf.Tensor:
    """[B] int64 seed -> [B] 32-bit key mixing both halves of the seed."""
    lo = tf.bitwise.bitwise_and(seed, _M32)
    hi = tf.bitwise.bitwise_and(tf.bitwise.right_shift(seed, 32), _M32)
    return _mix32(lo ^ _mix32(hi + _GOLDEN & _M32))


def gumbel_noise(keys: tf.Tensor, step: tf.Tensor, vocab_mix: tf.Tensor) -> tf.Tensor:
    """[B, V] Gumbel(0, 1) noise, a pure function of (row key, step, character)."""
    step_key = _mix32(keys ^ _mix32(tf.cast(step, tf.int64) + _GOLDEN & _M32))
    bits = _mix32(step_key[:, None] ^ vocab_mix[None, :])
    u = (tf.cast(bits, tf.float64) + 0.5) / 4294967296.0
    return tf.cast(-tf.math.log(-tf.math.log(u)), tf.float32)


def filter_logits(
    logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor
) -> tf.Tensor:
    """Scale by temperature, then mask everything outside each row's top-k and top-p set."""
    neg_inf = tf.constant(-np.inf, tf.float32)
    vocab = tf.shape(logits)[1]
    scaled = logits / tf.maximum(temperature, 1e-6)[:, None]
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)

    def top_k_only() -> tf.Tensor:
        # Without a nucleus only the k-th value is needed: a partial top-k of the largest k
        # asked for, not a sort of the whole vocabulary (a tenth of the time at V=4096,
        # batch 8). tf.sort is top_k with k=V, so the k-th value is the same bit for bit.
        best = tf.math.top_k(scaled, tf.reduce_max(k), sorted=True).values
        return tf.gather(best, k - 1, axis=1, batch_dims=1)

    def nucleus() -> tf.Tensor:
        ordered = tf.sort(scaled, axis=1, direction="DESCENDING")
        kth = tf.gather(ordered, k - 1, axis=1, batch_dims=1)
        # Keep the smallest prefix of the sorted distribution whose mass reaches p.
        probs = tf.nn.softmax(ordered, axis=1)
        before = tf.cumsum(probs, axis=1, exclusive=True)
        keep = (before < top_p[:, None]) | (tf.range(vocab)[None, :] == 0)
        pth = tf.reduce_min(tf.where(keep, ordered, np.inf), axis=1)
        pth = tf.where(top_p < 1.0, pth, neg_inf)
        return tf.maximum(kth, pth)

    threshold = tf.cond(tf.reduce_any(top_p < 1.0), nucleus, top_k_only)
    return tf.where(scaled >= threshold[:, None], scaled, neg_inf)


def penalise_repetition(logits: tf.Tensor, seen: tf.Tensor, penalty: tf.Tensor) -> tf.Tensor:
    """CTRL's repetition penalty: logits [B, V] of the tokens `seen` [B, V] (bool) are
    divided by the row's penalty [B] when positive, multiplied when negative. A penalty
    of exactly 1 leaves every logit bit for bit as it was."""
    p = tf.maximum(penalty, 1e-6)[:, None]
    return tf.where(seen, tf.where(logits > 0, logits / p, logits * p), logits)


def ngram_bans(history: tf.Tensor, length: tf.Tensor, size: tf.Tensor, vocab: int) -> tf.Tensor:
    """[B, V] bool: the tokens that would complete an n-gram already in the row's text.

    history [B, H] holds each row's tokens (prompt then generated) in [0, length); size [B]
    is n (0 = off, clamped to MAX_NGRAM_SIZE). A start i matches when the n - 1 tokens at
    i equal the row's last n - 1; the token at i + n - 1 is then banned (as in HF's
    NoRepeatNGramLogitsProcessor).
    """
    n = tf.clip_by_value(size, 0, MAX_NGRAM_SIZE)
    span = tf.shape(history)[1]
    j = tf.range(MAX_NGRAM_SIZE - 1)  # offsets inside the (n - 1)-token prefix
    padded = tf.pad(history, [[0, 0], [0, MAX_NGRAM_SIZE]])
    starts = tf.range(span)
    window = tf.gather(padded, starts[:, None] + j[None, :], axis=1)  # [B, H, M - 1]
    tail_at = tf.maximum(length - n + 1, 0)[:, None] + j[None, :]  # [B, M - 1]
    tail = tf.gather(padded, tail_at, axis=1, batch_dims=1)
    same = tf.equal(window, tail[:, None, :]) | (j[None, None, :] >= (n - 1)[:, None, None])
    match = tf.reduce_all(same, axis=2) & (starts[None, :] <= (length - n)[:, None])
    match &= (n > 0)[:, None]
    banned_at = tf.minimum(starts[None, :] + tf.maximum(n - 1, 0)[:, None], span - 1)
    banned = tf.gather(history, banned_at, axis=1, batch_dims=1)  # [B, H]
    rows = tf.broadcast_to(tf.range(tf.shape(history)[0])[:, None], tf.shape(banned))
    index = tf.stack([rows, tf.clip_by_value(banned, 0, vocab - 1)], axis=-1)
    hits = tf.scatter_nd(index, tf.cast(match, tf.int32), [tf.shape(history)[0], vocab])
    return hits > 0


def vocab_mix(vocab_size: int) -> tf.Tensor:
    """[V] int64: each token's fixed contribution to the noise hash."""
    return _mix32(tf.constant(np.arange(vocab_size, dtype=np.int64) * 2 + 1))
