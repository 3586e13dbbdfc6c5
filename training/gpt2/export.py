"""Export a GPT-2 as a SavedModel meeting the `generate` contract (DESIGN.md).

The whole decoding loop is in the graph, in core TensorFlow ops:
1. the right-padded prompt is read in one causal pass, which fills each layer's
   key/value cache for slots [0, T) (slots past a row's length are masked out);
2. each new token then costs one position: its query attends to the cached keys
   and values, and its own key and value are written in place at the slot equal to
   its position in the row's window (row b's token n at lengths[b] + n at first);
3. when a row's window is full (its next position would be n_positions), the window
   slides: the row's last `keep` tokens are read again in one causal pass at positions
   [0, keep), which replaces that row's cache, and generation goes on from there. So
   any max_new_tokens up to the cap works, whatever the context.
Sampling is per row (temperature, top-k, top-p and seed are [B] tensors) with the
char-LSTM's counter-based Gumbel noise, so a row's text depends only on its own
inputs, alone or batched. A row stops at the end token (`lengths` excludes it);
the loop ends when every row has stopped or reached its max_new_tokens.
`generate_controlled` adds the repetition controls (sampling.Controls) over each
row's whole text, prompt and generated; `generate` applies none.

`use_cache=False` builds the same generator recomputing the whole prefix for each
token, for the benchmark's comparison; the served export always uses the cache.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

from talkative_common.cli import command_parser
from training import sampling
from training.cli_common import checkpoint_option, export_options, print_json
from training.gpt2.model import BLOCK_WEIGHTS, GPT2Config

WARMUP_FILE = "tf_serving_warmup_requests"


def _layer_norm(x: tf.Tensor, gamma: tf.Variable, beta: tf.Variable, eps: float) -> tf.Tensor:
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + eps) * gamma + beta


def _gelu(x: tf.Tensor) -> tf.Tensor:
    # GPT-2's tanh approximation ("gelu_new"), spelt out in core ops.
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


@dataclass
class _Weights:
    """The weights as float32 tensors for one call (stored float16 to halve the files)."""

    wte: tf.Tensor
    wte_t: tf.Tensor  # wte transposed, [D, V], for the logits
    wpe: tf.Tensor
    layers: list[list[tf.Tensor]]
    ln_f: list[tf.Tensor]


# The longest story a new export generates: the top of textgen-service's
# max_new_tokens_limit range, so the service's setting is what bounds a request.
MAX_NEW_TOKENS_CAP = 4096


def default_keep(n_positions: int) -> int:
    """Tokens a full window keeps when it slides: a fifth of the context. One causal pass
    over them then serves the next n_positions - keep tokens: a quarter of a position
    each, and a position of that pass (no logits) costs about 2/3 of a cached step, so
    even when compute-bound a token past the window costs under 20% more (the issue's
    budget). Measured on gpt2_en's shape (context 256, CPU, 1 thread, shared machine):
    within noise at batch 1, +8% to +14% at batch 4; keeping half was +5% to +20%."""
    return max(1, n_positions // 5)


# The repetition controls of `generate_controlled` as the card lists them: textgen-service
# validates requests and fills omitted values from here. Defaults: a mild CTRL penalty
# (1.2 is CTRL's greedy value; with sampling and every earlier token penalised, punctuation
# included, over stories of a thousand tokens, 1.1 keeps the text fluent) and no verbatim
# repeat of 4 tokens (about three words: loops break, short stock phrases are still allowed).
GENERATION_OPTIONS: dict[str, dict[str, float | int]] = {
    "repetition_penalty": {"default": 1.1, "off": 1.0, "minimum": 1.0, "maximum": 2.0},
    "no_repeat_ngram_size": {
        "default": 4,
        "off": 0,
        "minimum": 0,
        "maximum": sampling.MAX_NGRAM_SIZE,
    },
}


class GPT2Generator(sampling.ControlledTextGenerator):
    """Core-ops-only generator built from HF-named GPT-2 weights (see model.to_weights)."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        config: GPT2Config,
        end_id: int,
        *,
        use_cache: bool = True,
        max_new_tokens_cap: int | None = None,
        weights_dtype: str = "float32",
        keep: int | None = None,
    ) -> None:
        super().__init__(name="gpt2")
        self.weights_dtype = weights_dtype
        self.config, self.end_id, self.use_cache = config, int(end_id), use_cache
        self.cap = max_new_tokens_cap or MAX_NEW_TOKENS_CAP
        self.keep = keep or default_keep(config.n_positions)
        if not 0 < self.keep < config.n_positions:
            raise ValueError(f"keep must be in [1, {config.n_positions}), got {self.keep}")
        self.heads, self.head_dim = config.n_head, config.n_embd // config.n_head

        def var(key: str) -> tf.Variable:
            return tf.Variable(weights[key].astype(weights_dtype), trainable=False, name=key)

        self.wte, self.wpe = var("wte.weight"), var("wpe.weight")
        self.layers = [[var(f"h.{i}.{n}") for n in BLOCK_WEIGHTS] for i in range(config.n_layer)]
        self.ln_f = [var("ln_f.weight"), var("ln_f.bias")]
        vmix = sampling.vocab_mix(config.vocab_size)
        self.vocab_mix = tf.Variable(vmix, trainable=False, name="vocab_mix")

    # -- the network --------------------------------------------------------------------

    def _materialise(self) -> _Weights:
        def f32(v: tf.Variable) -> tf.Tensor:
            return tf.cast(v, tf.float32) if v.dtype != tf.float32 else tf.identity(v)

        wte = f32(self.wte)
        return _Weights(
            wte=wte,
            # Transposed once per call: on CPU, [8, D] x [D, V] ran 2.7x faster than the
            # same product with transpose_b (docs/gpt2.md), and it is a step's largest.
            wte_t=tf.transpose(wte),
            wpe=f32(self.wpe),
            layers=[[f32(v) for v in layer] for layer in self.layers],
            ln_f=[f32(v) for v in self.ln_f],
        )

    def _split(self, x: tf.Tensor) -> tf.Tensor:
        """[B, S, D] -> [B, H, S, Dh]."""
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], self.heads, self.head_dim])
        return tf.transpose(x, [0, 2, 1, 3])

    def _mlp(self, x: tf.Tensor, p: list[tf.Variable]) -> tf.Tensor:
        h = _layer_norm(x, p[6], p[7], self.config.layer_norm_epsilon)
        h = _gelu(tf.matmul(h, p[8]) + p[9])
        return x + tf.matmul(h, p[10]) + p[11]

    def _full(
        self, w: _Weights, ids: tf.Tensor, positions: tf.Tensor, allowed: tf.Tensor
    ) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
        """Whole-sequence pass: ids, positions [B, S]; allowed [B, S, S] (query, key).

        Returns the final hidden states [B, S, D] and each layer's keys and values
        [B, H, S, Dh].
        """
        eps = self.config.layer_norm_epsilon
        batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
        x = tf.gather(w.wte, ids) + tf.gather(w.wpe, positions)
        bias = tf.where(allowed, 0.0, -1e9)[:, None]  # [B, 1, S, S]
        keys, values = [], []
        for p in w.layers:
            h = _layer_norm(x, p[0], p[1], eps)
            q, k, v = tf.split(tf.matmul(h, p[2]) + p[3], 3, axis=-1)
            q, k, v = self._split(q), self._split(k), self._split(v)
            scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.head_dim) + bias
            att = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
            att = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [batch, length, -1])
            x = self._mlp(x + tf.matmul(att, p[4]) + p[5], p)
            keys.append(k)
            values.append(v)
        return _layer_norm(x, w.ln_f[0], w.ln_f[1], eps), keys, values

    def _cached_step(
        self,
        w: _Weights,
        token: tf.Tensor,
        position: tf.Tensor,
        slot: tf.Tensor,
        visible: tf.Tensor,
        keys: list[tf.Tensor],
        values: list[tf.Tensor],
    ) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
        """One token per row: token, position, slot [B]; writes each row's slot of every cache.

        visible [B, S]: the cache slots each row may attend to (its own slot included).
        """
        eps = self.config.layer_norm_epsilon
        batch = tf.shape(token)[0]
        x = tf.gather(w.wte, token) + tf.gather(w.wpe, position)  # [B, D]
        bias = tf.where(visible, 0.0, -1e9)[:, None, None, :]  # [B, 1, 1, S]
        # Scatter indices (b, h, slot) for the new key/value of every row and head.
        grid = tf.stack(
            tf.meshgrid(tf.range(batch), tf.range(self.heads), indexing="ij"), axis=-1
        )  # [B, H, 2]
        index = tf.concat([grid, tf.tile(slot[:, None, None], [1, self.heads, 1])], axis=-1)
        new_keys, new_values = [], []
        for p, k_cache, v_cache in zip(w.layers, keys, values, strict=True):
            h = _layer_norm(x, p[0], p[1], eps)
            q, k, v = tf.split(tf.matmul(h, p[2]) + p[3], 3, axis=-1)
            shape = [batch, self.heads, self.head_dim]
            k_cache = tf.tensor_scatter_nd_update(k_cache, index, tf.reshape(k, shape))
            v_cache = tf.tensor_scatter_nd_update(v_cache, index, tf.reshape(v, shape))
            q = tf.reshape(q, [batch, self.heads, 1, self.head_dim])
            scores = tf.matmul(q, k_cache, transpose_b=True) / math.sqrt(self.head_dim) + bias
            att = tf.matmul(tf.nn.softmax(scores, axis=-1), v_cache)  # [B, H, 1, Dh]
            att = tf.reshape(att, [batch, -1])
            x = self._mlp(x + tf.matmul(att, p[4]) + p[5], p)
            new_keys.append(k_cache)
            new_values.append(v_cache)
        return _layer_norm(x, w.ln_f[0], w.ln_f[1], eps), new_keys, new_values

    def _logits(self, w: _Weights, hidden: tf.Tensor) -> tf.Tensor:
        return tf.matmul(hidden, w.wte_t)

    # -- sampling -----------------------------------------------------------------------

    def _sample(
        self,
        logits: tf.Tensor,
        n: tf.Tensor,
        keys: tf.Tensor,
        temperature: tf.Tensor,
        top_k: tf.Tensor,
        top_p: tf.Tensor,
    ) -> tf.Tensor:
        greedy = temperature <= 0.0
        # The sort behind top-k / top-p, and the noise, only when some row needs them.
        filtered = tf.cond(
            tf.reduce_any((top_k > 0) | (top_p < 1.0)),
            lambda: sampling.filter_logits(logits, temperature, top_k, top_p),
            lambda: logits / tf.maximum(temperature, 1e-6)[:, None],
        )
        best = tf.argmax(filtered, axis=1, output_type=tf.int32)
        return tf.cond(
            tf.reduce_all(greedy),
            lambda: best,
            lambda: tf.where(
                greedy,
                best,
                tf.argmax(
                    filtered + sampling.gumbel_noise(keys, n, self.vocab_mix),
                    axis=1,
                    output_type=tf.int32,
                ),
            ),
        )

    def _controlled(
        self, logits: tf.Tensor, controls: sampling.Controls, history: tf.Tensor, count: tf.Tensor
    ) -> tf.Tensor:
        """Apply the repetition controls to logits [B, V] over each row's text so far,
        history [B, H] in [0, count); each costs nothing unless some row turns it on."""
        penalty, size = controls
        vocab = self.config.vocab_size

        def penalise() -> tf.Tensor:
            batch, span = tf.shape(history)[0], tf.shape(history)[1]
            rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, span])
            index = tf.stack([rows, tf.clip_by_value(history, 0, vocab - 1)], axis=-1)
            written = tf.cast(tf.range(span)[None, :] < count[:, None], tf.int32)
            seen = tf.scatter_nd(index, written, [batch, vocab]) > 0
            return sampling.penalise_repetition(logits, seen, penalty)

        def ban(logits: tf.Tensor) -> tf.Tensor:
            banned = sampling.ngram_bans(history, count, size, vocab)
            return tf.where(banned, tf.constant(-np.inf, tf.float32), logits)

        logits = tf.cond(tf.reduce_any(tf.not_equal(penalty, 1.0)), penalise, lambda: logits)
        return tf.cond(tf.reduce_any(size > 0), lambda: ban(logits), lambda: logits)

    def _window(self, history: tf.Tensor, base: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        """[B, size] ids: each row's history from its window's start `base` [B]."""
        index = tf.minimum(base[:, None] + tf.range(size)[None, :], tf.shape(history)[1] - 1)
        return tf.gather(history, index, axis=1, batch_dims=1)

    def _reprime(
        self,
        w: _Weights,
        slide: tf.Tensor,
        history: tf.Tensor,
        count: tf.Tensor,
        top: tf.Tensor,
        keys: list[tf.Tensor],
        values: list[tf.Tensor],
    ) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
        """Rows `slide` [B] whose window is full restart it from their last `keep` tokens
        (history [B, H] in [0, count)): one causal pass over just those rows, at positions
        [0, keep), replaces their cache and their last hidden state."""
        keep = self.keep
        rows = tf.cast(tf.where(slide)[:, 0], tf.int32)  # only the rows that slide: cheap
        ids = self._window(tf.gather(history, rows), tf.gather(count, rows) - keep, keep)
        n_rows = tf.shape(rows)[0]
        positions = tf.tile(tf.range(keep)[None], [n_rows, 1])
        causal = tf.linalg.band_part(tf.ones([keep, keep], tf.bool), -1, 0)
        hidden, k_new, v_new = self._full(w, ids, positions, tf.tile(causal[None], [n_rows, 1, 1]))
        at = rows[:, None]
        pad = [[0, 0], [0, 0], [0, tf.shape(keys[0])[2] - keep], [0, 0]]
        keys = [
            tf.tensor_scatter_nd_update(k, at, tf.pad(n, pad))
            for k, n in zip(keys, k_new, strict=True)
        ]
        values = [
            tf.tensor_scatter_nd_update(v, at, tf.pad(n, pad))
            for v, n in zip(values, v_new, strict=True)
        ]
        return tf.tensor_scatter_nd_update(top, at, hidden[:, -1]), keys, values

    def decode(
        self, inputs: sampling.GenerateInputs, controls: sampling.Controls | None = None
    ) -> dict[str, tf.Tensor]:
        prompt_ids, prompt_lengths, max_new_tokens, temperature, top_k, top_p, seed = inputs
        n_pos, keep = self.config.n_positions, self.keep
        batch = tf.shape(prompt_ids)[0]
        # A prompt longer than the context is cut to its first n_positions tokens (the
        # service keeps the last ones before it gets here).
        width = tf.clip_by_value(tf.shape(prompt_ids)[1], 1, n_pos)
        ids = tf.clip_by_value(prompt_ids[:, :width], 0, self.config.vocab_size - 1)
        ids = tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])
        lengths = tf.clip_by_value(prompt_lengths, 1, width)
        # The window slides, so the context no longer bounds a row's budget.
        wanted = tf.clip_by_value(max_new_tokens, 0, self.cap)
        steps = tf.reduce_max(tf.concat([wanted, [0]], axis=0))
        # Cache slot = position in the row's window; the window never passes n_positions.
        slots = tf.minimum(width + tf.maximum(steps - 1, 0), n_pos)
        # Each row's text (prompt, then token n at lengths + n): the sliding window, the
        # repetition controls and the no-cache path read it.
        history = tf.pad(ids, [[0, 0], [0, steps]])

        positions = tf.tile(tf.range(width)[None], [batch, 1])
        causal = tf.linalg.band_part(tf.ones([width, width], tf.bool), -1, 0)
        causal = tf.tile(causal[None], [batch, 1, 1])
        w = self._materialise()
        hidden, keys, values = self._full(w, ids, positions, causal)
        top = tf.gather(hidden, lengths - 1, batch_dims=1)  # [B, D]
        pad = [[0, 0], [0, 0], [0, slots - width], [0, 0]]
        keys = [tf.pad(k, pad) for k in keys]
        values = [tf.pad(v, pad) for v in values]
        slot_ids = tf.range(slots)

        row_key = sampling.row_keys(seed)
        end = tf.constant(self.end_id, tf.int32)
        rows = tf.range(batch)

        def live_rows(n: tf.Tensor, done: tf.Tensor) -> tf.Tensor:
            return tf.logical_not(done) & (n < wanted)

        def body(
            n: tf.Tensor,
            top: tf.Tensor,
            keys: list[tf.Tensor],
            values: list[tf.Tensor],
            history: tf.Tensor,
            pos: tf.Tensor,
            base: tf.Tensor,
            done: tf.Tensor,
            out_lengths: tf.Tensor,
            out: tf.TensorArray,
        ) -> tuple:
            live = live_rows(n, done)
            logits = self._logits(w, top)
            count = lengths + n  # tokens of each row's text so far
            if controls is not None:
                logits = self._controlled(logits, controls, history, count)
            token = self._sample(logits, n, row_key, temperature, top_k, top_p)
            stopped = live & tf.equal(token, end)
            out_lengths = tf.where(stopped, n, out_lengths)
            done = done | stopped | ~live
            token = tf.where(live & ~stopped, token, 0)
            out = out.write(n, token)
            history = tf.tensor_scatter_nd_update(history, tf.stack([rows, count], axis=1), token)
            more = tf.reduce_any(live_rows(n + 1, done))

            def feed() -> tuple:
                # pos: where the new token goes in its row's window; a full window slides
                # (rows that have stopped never do: their state no longer matters).
                slide = ~done & (pos >= n_pos)
                at = tf.minimum(pos, n_pos - 1)
                if self.use_cache:
                    visible = slot_ids[None, :] <= at[:, None]
                    top2, k2, v2 = self._cached_step(w, token, at, at, visible, keys, values)
                    top2, k2, v2 = tf.cond(
                        tf.reduce_any(slide),
                        lambda: self._reprime(w, slide, history, count + 1, top2, k2, v2),
                        lambda: (top2, k2, v2),
                    )
                    base2 = tf.where(slide, count + 1 - keep, base)
                else:
                    # Without a cache: recompute each row's whole window, its token last.
                    base2 = tf.where(slide, count + 1 - keep, base)
                    last = tf.where(slide, keep - 1, at)
                    size = tf.reduce_max(last) + 1
                    window = self._window(history, base2, size)
                    span = tf.range(size)
                    allowed = (span[None, None, :] <= span[None, :, None]) & (
                        span[None, None, :] <= last[:, None, None]
                    )
                    hidden, _, _ = self._full(w, window, tf.tile(span[None], [batch, 1]), allowed)
                    top2, k2, v2 = tf.gather(hidden, last, batch_dims=1), keys, values
                return top2, k2, v2, tf.where(slide, keep, at + 1), base2

            top, keys, values, pos, base = tf.cond(
                more, feed, lambda: (top, keys, values, pos, base)
            )
            return n + 1, top, keys, values, history, pos, base, done, out_lengths, out

        out = tf.TensorArray(tf.int32, size=steps, element_shape=tf.TensorShape([None]))
        zeros = tf.zeros([batch], tf.int32)
        n, _, _, _, _, _, _, _, out_lengths, out = tf.while_loop(
            lambda n, *state: (n < steps) & tf.reduce_any(live_rows(n, state[-3])),
            body,
            (
                0,
                top,
                keys,
                values,
                history,
                lengths,
                zeros,
                tf.zeros([batch], tf.bool),
                wanted,
                out,
            ),
            maximum_iterations=self.cap,
        )
        stacked = tf.cond(
            n > 0,
            lambda: tf.transpose(out.gather(tf.range(n))),
            lambda: tf.zeros([batch, 0], tf.int32),
        )
        return {"token_ids": tf.reshape(stacked, [batch, n]), "lengths": out_lengths}


def weights_from_export(export_dir: Path) -> tuple[dict[str, np.ndarray], GPT2Config, int]:
    """(HF-named weights, config, end id) back from an exported model version."""
    card = json.loads((export_dir / "assets.extra" / "model_card.json").read_text())
    loaded = tf.saved_model.load(str(export_dir))
    weights = {"wte.weight": loaded.wte.numpy(), "wpe.weight": loaded.wpe.numpy()}
    for i, layer in enumerate(loaded.layers):
        for name, var in zip(BLOCK_WEIGHTS, layer, strict=True):
            weights[f"h.{i}.{name}"] = var.numpy()
    weights["ln_f.weight"], weights["ln_f.bias"] = (v.numpy() for v in loaded.ln_f)
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    return weights, GPT2Config(**card["architecture"]), int(card["tokenizer"]["end_id"])


def write_warmup_requests(out_dir: Path, name: str, prompt_ids: list[int]) -> None:
    """assets.extra/tf_serving_warmup_requests: TF Serving replays these before serving,
    so the first user does not pay for graph tracing (batch 1 and batch 2)."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:  # pragma: no cover - tensorflow-serving-api is a dev dependency
        return
    path = out_dir / "assets.extra" / WARMUP_FILE
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in (1, 2):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(
                    name=name, signature_name=sampling.GENERATE_SIGNATURE
                )
            )
            inputs = {
                "prompt_ids": np.asarray([prompt_ids] * batch, np.int32),
                "prompt_lengths": np.full([batch], len(prompt_ids), np.int32),
                "max_new_tokens": np.full([batch], 4, np.int32),
                "temperature": np.full([batch], 0.7, np.float32),
                "top_k": np.full([batch], 40, np.int32),
                "top_p": np.full([batch], 0.9, np.float32),
                "seed": np.arange(batch, dtype=np.int64),
            }
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def export_weights(
    weights: dict[str, np.ndarray],
    config: GPT2Config,
    tokenizer_json: Path,
    out_dir: Path,
    card: dict[str, Any],
    weights_dtype: str = "float32",
) -> dict[str, Any]:
    """Write the SavedModel, tokenizer.json, warm-up requests and the model card.

    weights_dtype "float16" stores the weights at half size (computation stays float32).
    """
    from training.gpt2.tokenizer import END_OF_TEXT, encode, end_id, load, style_ids

    tokenizer = load(tokenizer_json)
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise SystemExit(
            f"the tokenizer has {tokenizer.get_vocab_size()} tokens but the model only "
            f"{config.vocab_size} embedding rows"
        )
    end = end_id(tokenizer)
    generator = GPT2Generator(weights, config, end, weights_dtype=weights_dtype)
    extra = sampling.save_generator(generator, out_dir)
    shutil.copyfile(tokenizer_json, extra / "tokenizer.json")
    full = {
        **card,
        "kind": "gpt2",
        "signature": sampling.GENERATE_SIGNATURE,
        "signatures": sampling.signature_names(generator),
        "generation_options": GENERATION_OPTIONS,
        "sliding_window": {"keep": generator.keep},
        "tokenizer": {
            "type": "byte_level_bpe",
            "file": "tokenizer.json",
            "size": tokenizer.get_vocab_size(),
            "end_token": END_OF_TEXT,
            "end_id": end,
            **card.get("tokenizer", {}),
        },
        "architecture": config.to_dict(),
        "context": config.n_positions,
        "parameters": int(sum(w.size for w in weights.values())),
        "weights_dtype": weights_dtype,
        "max_new_tokens_cap": generator.cap,
        "date": datetime.now(UTC).date().isoformat(),
    }
    styles = style_ids(tokenizer)
    if styles:  # textgen-service opens a request in a style with its token
        full["styles"] = list(styles)
    sampling.write_model_card(extra, full)
    full["warmup_requests"] = write_warmup(
        out_dir, card["name"], encode(tokenizer, "The ") or [end]
    )
    sampling.write_model_card(extra, full)
    return full


def write_warmup(out_dir: Path, name: str, prompt_ids: list[int]) -> str:
    """The warm-up records: the project's writer (every signature and allowed batch size,
    replayed to prove they load) when present, else a minimal batch 1 and 2 set."""
    try:
        from training import serving_warmup
    except ImportError:
        write_warmup_requests(out_dir, name, prompt_ids)
        return WARMUP_FILE
    serving_warmup.write_warmup(out_dir, force=True)
    return WARMUP_FILE


def baseline_nats_per_char(path: Path) -> float:
    """A char-LSTM's held-out nats/char from its model card or its run's result.json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if "held_out_loss" in data:
        return float(data["held_out_loss"]["nats_per_char"])
    return float(data["best_valid_nats_per_char"])


def _continued_from(run_dir: Path) -> dict[str, object]:
    """The finished run a continuation started from (train.py --init-from): its settings
    and how many tokens it had seen, and, when it was itself a continuation, the run it
    started from, and so on, so the card tells the whole training."""
    config = json.loads((run_dir / "config.json").read_text())
    result = json.loads((run_dir / "result.json").read_text())
    return {
        "run": run_dir.name,
        **{k: config[k] for k in ("steps", "batch_size", "lr", "warmup_steps", "seed")},
        "tokens_seen": result["tokens_seen"],
        **(
            {"continued_from": _continued_from(Path(config["init_from"]))}
            if config.get("init_from")
            else {}
        ),
    }


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    name: str,
    language: str,
    checkpoint: str = "best",
    baseline: Path | None = None,
    weights_dtype: str = "float32",
    recipe: str | None = None,
) -> dict[str, Any]:
    """Export a finished `training.gpt2.train` run; `recipe` names the Makefile's training
    recipe that made it (cpu, gpu), recorded on the card."""
    from training.gpt2.model import build_model, to_weights

    config = json.loads((run_dir / "config.json").read_text())
    mcfg = GPT2Config(**config["model"])
    model = build_model(mcfg)
    model.load_weights(run_dir / "checkpoints" / f"{checkpoint}.weights.h5")
    result = json.loads((run_dir / "result.json").read_text())
    corpus_dir = Path(config["corpus"])
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    files = manifest.get("files", {})
    bits = result["best_valid_bits_per_char"]
    held_out: dict[str, Any] = {
        "text": f"{manifest['name']}/valid.txt, whole",
        "nats_per_token": round(result["best_valid_nats_per_token"], 4),
        "perplexity": round(result["best_valid_perplexity"], 2),
        "nats_per_char": round(result["best_valid_nats_per_char"], 4),
        "bits_per_char": round(bits, 4),
        "tokens": result["valid_tokens"],
        "chars": result["valid_chars"],
        "eval_stride": result["eval_stride"],
    }
    # A styled corpus's per-style and per-source held-out files (valid_novel.txt,
    # valid_kjv.txt...), each scored whole on its own.
    parts = result.get("held_out_parts", {})
    if parts:
        held_out["parts"] = {
            name: {
                "nats_per_char": round(part["nats_per_char"], 4),
                "bits_per_char": round(part["nats_per_char"] / math.log(2), 4),
                "nats_per_token": round(part["nats_per_token"], 4),
                "chars": part["chars"],
                "text": f"{manifest['name']}/valid_{name}.txt, whole",
            }
            for name, part in parts.items()
        }
    if baseline is not None:
        base = baseline_nats_per_char(baseline)
        held_out["char_lstm_baseline"] = {
            "source": str(baseline),
            "nats_per_char": round(base, 4),
            "bits_per_char": round(base / math.log(2), 4),
            "gpt2_better": bool(result["best_valid_nats_per_char"] < base),
        }
    vocab = "original GPT-2" if config["tokenizer"] == "gpt2" else "trained on the corpus"
    card = {
        "name": name,
        "language": language,
        "description": f"GPT-2 ({mcfg.n_layer} layers x {mcfg.n_embd}, {mcfg.n_head} heads, "
        f"context {mcfg.n_positions}) trained from scratch on {manifest['source']}; byte-level "
        f"BPE of {mcfg.vocab_size} tokens {vocab}.",
        "tokenizer": {"source": vocab},
        "training_corpus": {
            "name": manifest["name"],
            "source": manifest["source"],
            "licence": manifest["licence"],
            "split_rule": manifest.get("split_rule"),
            "train_chars": files.get("train.txt", {}).get("chars"),
            "valid_chars": files.get("valid.txt", {}).get("chars"),
            "train_sha256": files.get("train.txt", {}).get("sha256"),
            "train_tokens": result["train_tokens"],
            "valid_documents": manifest.get("documents", {}).get("valid"),
        },
        "training": {
            k: config[k]
            for k in (
                "preset",
                "steps",
                "batch_size",
                "lr",
                "warmup_steps",
                "weight_decay",
                "clipnorm",
                "seed",
            )
        }
        | {
            "optimizer": "AdamW, linear warm-up, cosine decay",
            "tokens_seen": result["tokens_seen"],
            "checkpoint": checkpoint,
        }
        | ({"recipe": recipe} if recipe else {})
        | (
            {"continued_from": _continued_from(Path(config["init_from"]))}
            if config.get("init_from")
            else {}
        ),
        "held_out_loss": held_out,
        "licence": "model weights: Apache-2.0; training text: " + manifest["licence"],
    }
    return export_weights(
        to_weights(model), mcfg, run_dir / "tokenizer.json", out_dir, card, weights_dtype
    )


def main(argv: list[str] | None = None) -> None:
    """Export a GPT-2 training run as a TF Serving model version: SavedModel with the `generate`
    signature (KV cache in the graph), assets.extra/tokenizer.json, tf_serving_warmup_requests and
    model_card.json."""
    p = command_parser(
        main,
        parents=[export_options(out_example="serving/models/gpt2_en/1", name=None, language=None)],
    )
    checkpoint_option(p)
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a char-LSTM model_card.json or result.json on the same corpus: its held-out "
        "bits per character is recorded beside this model's in the card",
    )
    p.add_argument(
        "--weights-dtype",
        default="float32",
        choices=["float32", "float16"],
        help="storage type of the weights; float16 halves the files, computation stays float32",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="the training recipe that made the run (the Makefile's GPT2_RECIPE: cpu or gpu), "
        "recorded on the card",
    )
    a = vars(p.parse_args(argv))
    print_json(export_run(a.pop("run_dir"), a.pop("out"), **a))


if __name__ == "__main__":
    main()
