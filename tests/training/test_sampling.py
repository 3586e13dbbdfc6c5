"""training.sampling: the in-graph filters against a plain NumPy reading of their rules."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training import sampling


def reference_filter(
    logits: np.ndarray, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray
) -> np.ndarray:
    """Sort the whole vocabulary; keep what is at least the k-th value and inside the nucleus."""
    batch, vocab = logits.shape
    scaled = logits / np.maximum(temperature, 1e-6)[:, None]
    ordered = -np.sort(-scaled, axis=1)
    k = np.where(top_k > 0, np.minimum(top_k, vocab), vocab)
    kth = ordered[np.arange(batch), k - 1]
    probs = tf.nn.softmax(ordered, axis=1).numpy()
    before = tf.cumsum(probs, axis=1, exclusive=True).numpy()
    inside = (before < top_p[:, None]) | (np.arange(vocab)[None, :] == 0)
    pth = np.where(top_p < 1.0, np.where(inside, ordered, np.inf).min(axis=1), -np.inf)
    return np.where(scaled >= np.maximum(kth, pth)[:, None], scaled, -np.inf)


@pytest.mark.parametrize("vocab", [7, 97, 4096])
@pytest.mark.parametrize("nucleus", [False, True])
def test_filter_logits_keeps_exactly_the_top_k_and_nucleus(vocab: int, nucleus: bool) -> None:
    # The top-k-only path takes a partial top-k instead of a sort: it must keep the same
    # logits bit for bit, ties at the k-th value, rows with k off and k past V included.
    rng = np.random.default_rng(vocab)
    for trial in range(12):
        batch = int(rng.integers(1, 9))
        logits = rng.normal(size=(batch, vocab)).astype(np.float32)
        if trial % 2:
            logits = np.round(logits, 1)  # many ties
        temperature = rng.choice([0.0, 0.5, 1.0, 1.3], size=batch).astype(np.float32)
        top_k = rng.choice([0, 1, 3, 40, vocab, vocab + 5], size=batch).astype(np.int32)
        top_p = (
            rng.choice([1.0, 0.9, 0.3], size=batch).astype(np.float32)
            if nucleus
            else np.ones(batch, np.float32)
        )
        got = sampling.filter_logits(
            tf.constant(logits), tf.constant(temperature), tf.constant(top_k), tf.constant(top_p)
        ).numpy()
        want = reference_filter(logits, temperature, top_k, top_p)
        assert np.array_equal(got, want), (trial, top_k.tolist(), top_p.tolist())
        kept = np.isfinite(got).sum(axis=1)
        small = (top_k > 0) & (top_k < vocab) & (top_p >= 1.0)
        assert (kept[small] >= top_k[small]).all()
