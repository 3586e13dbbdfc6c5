"""In-graph beam search, checked exactly with decoders whose step probabilities the test fixes.

The decoder here is a table: `table[row, t, previous word]` is the distribution of the
next word, so every expected caption can be worked out by hand or by the plain
Python beam search below (Show and Tell's algorithm, written for clarity, not speed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from training.captioner.beam_search import NEG, beam_search, greedy

PAD, START, END = 0, 1, 2


def table_step(table: np.ndarray):
    """step(tokens, (row, t)) -> log table[row, t, token]: a decoder fixed by the test."""
    log_table = tf.constant(np.log(np.maximum(table, 1e-30)), tf.float32)

    def step(tokens: tf.Tensor, state: tuple[tf.Tensor, tf.Tensor]):
        row, t = state
        return tf.gather_nd(log_table, tf.stack([row, t, tokens], axis=1)), (row, t + 1)

    return step


def run(table: np.ndarray, beam, max_len: int, alpha: float = 0.0, use_greedy=False):
    """`beam` is one width, or a list with each row's own width."""
    rows = table.shape[0]
    widths = beam if isinstance(beam, list) else [beam] * rows
    state = (tf.range(rows, dtype=tf.int32), tf.zeros([rows], tf.int32))
    step = table_step(table)

    @tf.function
    def search():
        if use_greedy:
            return greedy(step, state, rows, max_len=max_len, start_id=START, end_id=END)
        return beam_search(
            step,
            state,
            rows,
            beam_size=tf.constant(beam, tf.int32) if isinstance(beam, list) else beam,
            max_len=max_len,
            start_id=START,
            end_id=END,
            length_alpha=alpha,
        )

    r = search()
    assert r.tokens.shape[1] == max(widths)
    out = []
    for b in range(rows):
        captions = []
        for j in range(max(widths)):
            if r.log_probs[b, j] <= NEG / 2:
                if j >= widths[b]:
                    assert int(r.lengths[b, j]) == 0, "results past a row's width are empty"
                continue
            assert j < widths[b], "no results past a row's own width"
            n = int(r.lengths[b, j])
            words = r.tokens[b, j].numpy().tolist()
            assert all(w == PAD for w in words[n:]), "padding after the caption"
            captions.append((tuple(words[:n]), float(r.log_probs[b, j]), float(r.scores[b, j])))
        out.append(captions)
    return out


def reference(table: np.ndarray, beam: int, max_len: int, alpha: float = 0.0):
    """Plain Python beam search over one row's table (Show and Tell's caption generator)."""

    def score(lp: float, length: int) -> float:
        return lp if alpha == 0 else lp / max(length, 1) ** alpha

    vocab = table.shape[-1]
    alive: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    finished: list[tuple[tuple[int, ...], float, float]] = []
    for t in range(max_len):
        ends, cands = [], []
        for i, (words, lp) in enumerate(alive):
            probs = table[t, words[-1] if words else START]
            for w in range(vocab):
                c = lp + math.log(max(probs[w], 1e-30))
                if w == END:
                    ends.append((words, c, score(c, t + 1)))
                else:
                    cands.append((c, i * vocab + w, (*words, w)))
        # sorted() is stable: ties keep the earlier entry, as top_k keeps the lower index
        finished = sorted(finished + ends, key=lambda f: -f[2])[:beam]
        best = sorted(cands, key=lambda c: (-c[0], c[1]))[:beam]
        alive = [(words, c) for c, _, words in best]
    finished += [(words, lp, score(lp, max_len)) for words, lp in alive]
    return sorted(finished, key=lambda f: -f[2])[:beam]


def close(got, want) -> None:
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-5, atol=1e-5)


def fixed(steps: list[dict[int, dict[int, float]]], vocab: int = 6) -> np.ndarray:
    """A one-row table from {t: {previous word: {word: p}}}; unlisted rows say <end>."""
    table = np.zeros((1, len(steps), vocab, vocab))
    table[0, :, :, END] = 1.0
    for t, rows in enumerate(steps):
        for prev, dist in rows.items():
            table[0, t, prev] = 0.0
            for w, p in dist.items():
                table[0, t, prev, w] = p
    return table


def test_beam_finds_what_greedy_misses() -> None:
    # Greedy takes word 3 (0.5) then can only end badly; beam 2 keeps word 4 (0.4),
    # whose continuation is certain: 0.4 * 1.0 * 1.0 beats 0.5 * 0.3 * 1.0.
    table = fixed(
        [
            {START: {3: 0.5, 4: 0.4, END: 0.1}},
            {3: {5: 0.3, END: 0.3, 3: 0.4}, 4: {5: 1.0}},
            {3: {END: 1.0}, 5: {END: 1.0}},
        ]
    )
    (greedy_out,) = run(table, 1, 3, use_greedy=True)
    assert greedy_out[0][0] == (3, 3)
    np.testing.assert_allclose(greedy_out[0][1], math.log(0.5 * 0.4 * 1.0), rtol=1e-5)
    (beam_out,) = run(table, 2, 3)
    assert [c[0] for c in beam_out] == [(4, 5), (3, 3)]
    np.testing.assert_allclose(beam_out[0][1], math.log(0.4), rtol=1e-5)


def test_early_end_is_a_finished_caption() -> None:
    # <end> right after one word is the most likely caption: it must come first, short.
    table = fixed([{START: {3: 0.9, 4: 0.1}}, {3: {END: 0.8, 5: 0.2}, 4: {5: 1.0}}, {}])
    (out,) = run(table, 3, 3)
    assert out[0][0] == (3,)
    np.testing.assert_allclose(out[0][1], math.log(0.9 * 0.8), rtol=1e-5)
    close(out, reference(table[0], 3, 3))


def test_max_length_cuts_captions_that_never_end() -> None:
    table = np.zeros((1, 4, 6, 6))
    table[0, :3, :, 3] = 0.9
    table[0, :3, :, 5] = 0.1
    table[0, 3, :, 3] = 0.6
    table[0, 3, :, 4] = 0.4  # <end> is never possible
    (out,) = run(table, 2, 4)
    assert [c[0] for c in out] == [(3, 3, 3, 3), (3, 3, 3, 4)]
    np.testing.assert_allclose(out[0][1], math.log(0.9**3 * 0.6), rtol=1e-5)
    close(out, reference(table[0], 2, 4))


def test_ties_go_to_the_lower_word_id() -> None:
    table = np.full((1, 2, 6, 6), 1e-6)
    table[0, 0, START, [3, 4, 5]] = 1 / 3
    table[0, 1, :, END] = 1.0
    (out,) = run(table, 2, 2)
    assert [c[0] for c in out] == [(3,), (4,)]
    (one,) = run(table, 1, 2, use_greedy=True)
    assert one[0][0] == (3,)


def test_length_normalisation_prefers_the_longer_caption() -> None:
    # Short: 0.55 over 2 tokens. Long: 0.45 * 0.99 * 0.99 over 4 tokens: less likely in
    # total, more likely per token.
    table = fixed(
        [
            {START: {3: 1.0}},
            {3: {END: 0.55, 4: 0.45}},
            {4: {5: 0.99, END: 0.01}},
            {5: {END: 0.99, 3: 0.01}},
        ]
    )
    plain = run(table, 2, 4)[0]
    normalised = run(table, 2, 4, alpha=1.0)[0]
    assert plain[0][0] == (3,)
    assert normalised[0][0] == (3, 4, 5)
    np.testing.assert_allclose(normalised[0][2], math.log(0.45 * 0.99 * 0.99) / 4, rtol=1e-5)
    close(plain, reference(table[0], 2, 4))
    close(normalised, reference(table[0], 2, 4, alpha=1.0))


@pytest.mark.parametrize("beam", [1, 2, 3, 5])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_matches_the_python_reference_on_random_decoders(beam: int, alpha: float) -> None:
    rng = np.random.default_rng(beam * 10 + int(alpha * 10))
    rows, steps, vocab = 4, 6, 7
    logits = rng.normal(size=(rows, steps, vocab, vocab)) * 2
    logits[..., END] += rng.normal(size=(rows, steps, vocab)) - 1  # ends at varied steps
    table = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = run(table, beam, steps, alpha=alpha)
    for b in range(rows):
        close(got[b], reference(table[b], beam, steps, alpha=alpha))


def test_rows_of_a_batch_are_independent() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3, 5, 6, 6)) * 2
    table = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    together = run(table, 3, 5)
    for b in range(3):
        assert run(table[b : b + 1], 3, 5)[0] == together[b]


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_each_row_can_have_its_own_width(alpha: float) -> None:
    # One call, widths 1, 3, 2 and 5: each row gets exactly the search of its own width.
    rng = np.random.default_rng(11)
    widths = [1, 3, 2, 5]
    logits = rng.normal(size=(len(widths), 6, 7, 7)) * 2
    logits[..., END] += rng.normal(size=(len(widths), 6, 7)) - 1
    table = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = run(table, widths, 6, alpha=alpha)
    for b, k in enumerate(widths):
        assert len(got[b]) <= k
        close(got[b], reference(table[b], k, 6, alpha=alpha))
        assert got[b] == run(table[b : b + 1], k, 6, alpha=alpha)[0]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        beam_search(lambda t, s: (t, s), (), 1, beam_size=0, max_len=3, start_id=1, end_id=2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        beam_search(
            lambda t, s: (t, s),
            (),
            2,
            beam_size=tf.constant([2, 0]),
            max_len=3,
            start_id=1,
            end_id=2,
        )


def test_runs_in_a_graph_with_an_unknown_batch_size() -> None:
    # As in the exported captioner: the batch dimension is only known at run time.
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 6, 6))
    table = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    step = table_step(table)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def search(rows: tf.Tensor):
        state = (rows, tf.zeros_like(rows))
        r = beam_search(
            step, state, tf.shape(rows)[0], beam_size=3, max_len=4, start_id=START, end_id=END
        )
        return r.tokens, r.log_probs

    tokens, log_probs = search(tf.constant([1, 0], tf.int32))
    assert tokens.shape == (2, 3, 4)
    np.testing.assert_allclose(log_probs[1, 0], reference(table[0], 3, 4)[0][1], rtol=1e-5)
