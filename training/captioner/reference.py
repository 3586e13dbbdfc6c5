"""Show and Tell's reference inference: beam search in Python, one model call per word.

The original im2txt ran the CNN once (`feed_image`), then called the LSTM step
(`inference_step`) once per word for all live beams, feeding the state back in
from Python. This is that client-side loop over an exported captioner's two
signatures of the same names, with the ranking rules of `beam_search.py`, so the
two give the same captions and bench/caption.py can compare their speed fairly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from training.captioner.vocab import END_ID, START_ID

# (input_feed int32 [N], state_h [N, U], state_c [N, U]) -> (log_probs [N, V], h, c)
StepFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def beam_search(
    initial_state: tuple[np.ndarray, np.ndarray],
    step: StepFn,
    *,
    beam_size: int,
    max_len: int,
) -> list[tuple[list[int], float]]:
    """The `beam_size` best (word ids, log-probability) of one image, best first."""
    h, c = initial_state  # [1, U]
    alive: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[list[int], float]] = []
    tokens = np.array([START_ID], np.int32)
    for _ in range(max_len):
        log_probs, h, c = step(tokens, h, c)
        vocab = log_probs.shape[1]
        cand = np.array([lp for _, lp in alive])[:, None] + log_probs
        finished += [(words, float(cand[i, END_ID])) for i, (words, _) in enumerate(alive)]
        # A stable sort keeps the earlier finished caption first on ties, as top_k does.
        finished = sorted(finished, key=lambda f: -f[1])[:beam_size]
        cand[:, END_ID] = -np.inf
        flat = cand.reshape(-1)
        # Best first; ties to the lower (beam, word) index, as tf.math.top_k breaks them.
        order = np.lexsort((np.arange(flat.size), -flat))[:beam_size]
        rows, words = order // vocab, order % vocab
        alive = [
            (alive[r][0] + [int(w)], float(flat[o]))
            for r, w, o in zip(rows, words, order, strict=True)
        ]
        tokens, h, c = words.astype(np.int32), h[rows], c[rows]
        if len(finished) == beam_size and finished[-1][1] >= max(lp for _, lp in alive):
            return finished  # log-probabilities only fall: no live beam can still get in
    return sorted(finished + alive, key=lambda f: -f[1])[:beam_size]


def caption_image(model: Any, image_bytes: bytes, *, beam_size: int, max_len: int) -> list[Any]:
    """Run the reference on a loaded SavedModel's `feed_image` and `inference_step`."""
    import tensorflow as tf

    feed = model.signatures["feed_image"]
    infer = model.signatures["inference_step"]
    state = feed(image_bytes=tf.constant([image_bytes]))

    def step(tokens: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[Any, Any, Any]:
        out = infer(input_feed=tf.constant(tokens), state_h=tf.constant(h), state_c=tf.constant(c))
        return out["log_probs"].numpy(), out["state_h"].numpy(), out["state_c"].numpy()

    initial = (state["state_h"].numpy(), state["state_c"].numpy())
    return beam_search(initial, step, beam_size=beam_size, max_len=max_len)
