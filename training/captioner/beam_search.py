"""Beam search and greedy decoding as one TensorFlow graph (one call per image batch).

The decoder is given as `step(tokens, state) -> (log_probs, new_state)`: `tokens` are
the previous word of every beam, `[B*K]`, `state` any nest of tensors whose first
dimension is `B*K`, `log_probs` is `[B*K, V]`. The search runs in a `tf.while_loop`
inside the exported graph, carrying the decoder state beam to beam, so TF Serving
answers a request with one RPC, never one per word.

Semantics (those of Show and Tell's caption generator, which a test checks
exactly against a plain Python version):

- every step expands each live beam by every word; a candidate ending in `<end>`
  joins the finished captions, the `K` best other candidates stay alive (ranked by
  the sum of their log-probabilities);
- beams still alive after `max_len` words are finished as they are (no `<end>`);
- the `K` best finished captions are returned, best first, ranked by their
  log-probability divided by `length ** length_alpha`, where `length` counts the
  predicted tokens (words, plus `<end>` when there is one); `length_alpha=0` ranks by
  plain log-probability, which favours short captions;
- ties go to the beam ranked higher, then to the lower word id (`tf.math.top_k`);
- with `length_alpha=0` the loop stops as soon as no live beam can still enter the
  top `K` (log-probabilities only fall), which changes no result.

Greedy decoding is the same search with `K = 1`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import tensorflow as tf

# Stands for log(0) without producing NaN in sums and differences.
NEG = -1e9

StepFn = Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]]


class BeamResult(NamedTuple):  # a nest tf.function can return
    tokens: tf.Tensor  # int32 [B, K, max_len], words only, padded with `pad_id`
    lengths: tf.Tensor  # int32 [B, K], words in each caption
    log_probs: tf.Tensor  # float32 [B, K], sum of log-probabilities (with <end> if reached)
    scores: tf.Tensor  # float32 [B, K], what the ranking used (length-normalised)


def _normalise(log_probs: tf.Tensor, length: tf.Tensor, alpha: float) -> tf.Tensor:
    if alpha == 0.0:
        return log_probs
    length = tf.maximum(tf.cast(length, tf.float32), 1.0)
    return tf.where(log_probs > NEG / 2, log_probs / tf.pow(length, alpha), NEG)


def _same_shape(new: tf.Tensor, old: tf.Tensor) -> tf.Tensor:
    new.set_shape(old.shape)
    return new


def _take(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """values [B, N, ...], index [B, M] -> [B, M, ...]."""
    return tf.gather(values, index, batch_dims=1)


def beam_search(
    step: StepFn,
    state: Any,
    batch_size: tf.Tensor | int,
    *,
    beam_size: int | tf.Tensor,
    max_len: int,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
    length_alpha: float = 0.0,
) -> BeamResult:
    """The `beam_size` best captions of each of `batch_size` inputs; `state` is per input.

    `beam_size` is an int, or an int32 tensor `[B]` giving each input its own width:
    then the search runs at the largest width, input `b` keeps only its best
    `beam_size[b]` live beams at every step (exactly a search of that width), and
    its results past `beam_size[b]` come back empty (length 0, log-probability NEG).
    """
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    # (No annotations on k and row_k: AutoGraph refuses annotated names used by closures.)
    if isinstance(beam_size, int):
        if beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        k, row_k = beam_size, None
    else:
        row_k = tf.convert_to_tensor(beam_size, tf.int32)
        tf.debugging.assert_positive(row_k, message="beam_size must be at least 1")
        k = tf.reduce_max(row_k)
    t_max = max_len
    b = tf.convert_to_tensor(batch_size, tf.int32)
    # One copy of each input's state per beam: row b*K + j is beam j of input b.
    state = tf.nest.map_structure(lambda s: tf.repeat(s, k, axis=0), state)
    tokens = tf.fill([b * k], tf.constant(start_id, tf.int32))
    # Only beam 0 is live at the start, so the first step does not pick one word K times.
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], tf.constant(NEG, tf.float32))], axis=0)
    alive_lp = tf.tile(first[None, :], [b, 1])
    alive_seq = tf.fill([b, k, t_max], tf.constant(pad_id, tf.int32))
    fin_seq = tf.fill([b, k, t_max], tf.constant(pad_id, tf.int32))
    fin_len = tf.zeros([b, k], tf.int32)
    fin_lp = tf.fill([b, k], tf.constant(NEG, tf.float32))
    fin_score = tf.fill([b, k], tf.constant(NEG, tf.float32))
    positions = tf.range(t_max)

    def merge(
        fin: tuple[tf.Tensor, ...], new: tuple[tf.Tensor, ...]
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """K best of the finished captions and new ones; the finished win ties."""
        seq, length, lp, score = (tf.concat([f, n], axis=1) for f, n in zip(fin, new, strict=True))
        best = tf.math.top_k(score, k=k).indices
        return _take(seq, best), _take(length, best), _take(lp, best), _take(score, best)

    def not_done(
        t: tf.Tensor,
        alive_lp: tf.Tensor,
        alive_seq: tf.Tensor,
        tokens: tf.Tensor,
        fin_seq: tf.Tensor,
        fin_len: tf.Tensor,
        fin_lp: tf.Tensor,
        fin_score: tf.Tensor,
        state: Any,
    ) -> tf.Tensor:
        more = t < t_max
        if length_alpha != 0.0:
            return more
        # log-probabilities only fall: a live beam below the K-th finished caption is out.
        kth = fin_score[:, -1] if row_k is None else _take(fin_score, row_k[:, None] - 1)[:, 0]
        hopeless = tf.reduce_all(kth >= tf.reduce_max(alive_lp, axis=1))
        return tf.logical_and(more, tf.logical_not(hopeless))

    def body(
        t: tf.Tensor,
        alive_lp: tf.Tensor,
        alive_seq: tf.Tensor,
        tokens: tf.Tensor,
        fin_seq: tf.Tensor,
        fin_len: tf.Tensor,
        fin_lp: tf.Tensor,
        fin_score: tf.Tensor,
        state: Any,
    ) -> tuple[Any, ...]:
        before = (t, alive_lp, alive_seq, tokens, fin_seq, fin_len, fin_lp, fin_score, state)
        log_probs, state = step(tokens, state)
        vocab = tf.shape(log_probs)[1]
        cand = alive_lp[:, :, None] + tf.reshape(log_probs, [b, k, vocab])
        live = alive_lp > NEG / 2

        # Candidates ending here: t words plus <end>.
        end_lp = tf.where(live, cand[:, :, end_id], NEG)
        fin_seq, fin_len, fin_lp, fin_score = merge(
            (fin_seq, fin_len, fin_lp, fin_score),
            (alive_seq, tf.fill([b, k], t), end_lp, _normalise(end_lp, t + 1, length_alpha)),
        )

        # The K best continuations that do not end.
        is_end = tf.equal(tf.range(vocab), end_id)[None, None, :]
        cand = tf.where(tf.logical_or(is_end, ~live[:, :, None]), NEG, cand)
        top = tf.math.top_k(tf.reshape(cand, [b, k * vocab]), k=k)
        beam, word = top.indices // vocab, top.indices % vocab
        alive_next = top.values
        if row_k is not None:
            alive_next = tf.where(tf.range(k)[None, :] < row_k[:, None], alive_next, NEG)
        alive_seq = tf.where(
            tf.equal(positions, t)[None, None, :], word[:, :, None], _take(alive_seq, beam)
        )
        rows = tf.reshape(tf.range(b)[:, None] * k + beam, [-1])
        state = tf.nest.map_structure(lambda s: tf.gather(s, rows), state)
        after = (
            t + 1,
            alive_next,
            alive_seq,
            tf.reshape(word, [-1]),
            fin_seq,
            fin_len,
            fin_lp,
            fin_score,
            state,
        )
        # Gathers lose static shapes; the loop needs them unchanged from one step to the next.
        return tf.nest.map_structure(_same_shape, after, before)

    loop = tf.while_loop(
        not_done,
        body,
        (tf.constant(0), alive_lp, alive_seq, tokens, fin_seq, fin_len, fin_lp, fin_score, state),
        maximum_iterations=t_max,
    )
    t, alive_lp, alive_seq, _, fin_seq, fin_len, fin_lp, fin_score, _ = loop
    # Beams that reached max_len without <end> finish as they are (only if the loop ran out).
    ran_out = tf.equal(t, t_max)
    cut_lp = tf.where(tf.logical_and(ran_out, alive_lp > NEG / 2), alive_lp, NEG)
    fin_seq, fin_len, fin_lp, fin_score = merge(
        (fin_seq, fin_len, fin_lp, fin_score),
        (alive_seq, tf.fill([b, k], t_max), cut_lp, _normalise(cut_lp, t_max, length_alpha)),
    )
    if row_k is not None:
        extra = tf.range(k)[None, :] >= row_k[:, None]
        fin_seq = tf.where(extra[:, :, None], pad_id, fin_seq)
        fin_len = tf.where(extra, 0, fin_len)
        fin_lp, fin_score = tf.where(extra, NEG, fin_lp), tf.where(extra, NEG, fin_score)
    return BeamResult(fin_seq, fin_len, fin_lp, fin_score)


def greedy(
    step: StepFn,
    state: Any,
    batch_size: tf.Tensor | int,
    *,
    max_len: int,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
) -> BeamResult:
    """The most likely word at every step: beam search of width 1."""
    return beam_search(
        step,
        state,
        batch_size,
        beam_size=1,
        max_len=max_len,
        start_id=start_id,
        end_id=end_id,
        pad_id=pad_id,
    )
