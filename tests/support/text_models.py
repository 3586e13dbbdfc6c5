"""Tiny text-model versions the tests train or export in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from training.char_lstm.train import TrainConfig

# The sizes every tiny char-LSTM of the tests shares (each test picks its units and steps).
TINY_CHAR_LSTM: dict[str, Any] = dict(
    embed_dim=8, batch_size=4, seq_len=16, eval_streams=2, threads=1
)


def write_tiny_corpus(corpus: Path, text: str, name: str = "tiny") -> Path:
    """A corpus folder as training.corpora writes one: train/valid text and a manifest."""
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "train.txt").write_text(text * 40, encoding="utf-8")
    (corpus / "valid.txt").write_text(text * 4, encoding="utf-8")
    manifest = {
        "name": name,
        "source": "test text",
        "licence": "CC0",
        "split_rule": "copy",
        "files": {"train.txt": {"chars": 1, "sha256": "x"}, "valid.txt": {"chars": 1}},
        "documents": {"valid": ["all"]},
    }
    (corpus / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return corpus


# What every resumable training run leaves in its folder (besides its vocabulary or tokenizer).
RUN_FILES = (
    "config.json",
    "loss_curve.png",
    "result.json",
    "checkpoints/best.weights.h5",
    "checkpoints/last.weights.h5",
    "checkpoints/state.json",
)


def tiny_char_lstm(corpus: Path, run: Path, **sizes: Any) -> TrainConfig:
    """A tiny char-LSTM's config: TINY_CHAR_LSTM, and the test's `sizes` (units, steps...)."""
    from training.char_lstm.train import TrainConfig

    return TrainConfig(corpus=corpus, run_dir=run, **TINY_CHAR_LSTM, **sizes)


def train_tiny_char_lstm(corpus: Path, run: Path) -> Path:
    """Six steps of a 24-unit char-LSTM: enough for a real export, not for prose."""
    from training.char_lstm.train import train

    train(tiny_char_lstm(corpus, run, units=24, steps=6, eval_every=3, warmup_steps=2))
    return run


def call_generate(
    fn: Any,
    prompts: list[list[int]],
    n: int | list[int],
    *,
    temperature: float | list[float] = 0.0,
    top_k: int | list[int] = 0,
    top_p: float | list[float] = 1.0,
    seed: int | list[int] = 1,
) -> dict[str, np.ndarray]:
    """One call of a `generate` function (a SavedModel signature or a generator's method):
    the prompts right-padded, each knob given once for every row or as one value a row."""
    import tensorflow as tf

    batch = len(prompts)
    ids = np.zeros((batch, max(map(len, prompts))), np.int32)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = p

    def per_row(value: object, dtype: type) -> tf.Tensor:
        values = value if isinstance(value, list) else [value] * batch
        return tf.constant(np.asarray(values, dtype))

    out = fn(
        prompt_ids=tf.constant(ids),
        prompt_lengths=tf.constant([len(p) for p in prompts], tf.int32),
        max_new_tokens=per_row(n, np.int32),
        temperature=per_row(temperature, np.float32),
        top_k=per_row(top_k, np.int32),
        top_p=per_row(top_p, np.float32),
        seed=per_row(seed, np.int64),
    )
    return {k: v.numpy() for k, v in out.items()}


def export_broken_generate(target: Path, *, assets: Path) -> Path:
    """A `generate` that breaks the contract (a scalar temperature, TF Serving could not batch
    it, and no seed) beside a valid card and vocabulary copied from `assets`."""
    import tensorflow as tf

    class Broken(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="prompt_ids"),
                tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
                tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([None], tf.int32, name="top_k"),
                tf.TensorSpec([None], tf.float32, name="top_p"),
            ]
        )
        def generate(self, prompt_ids, prompt_lengths, max_new_tokens, temperature, top_k, top_p):
            return {"token_ids": prompt_ids, "lengths": prompt_lengths}

    module = Broken()
    tf.saved_model.save(module, str(target), signatures={"generate": module.generate})
    shutil.copytree(assets, target / "assets.extra")
    return target
