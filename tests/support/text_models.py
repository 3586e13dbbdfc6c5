"""Tiny text-model versions the tests train or export in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


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


def train_tiny_char_lstm(corpus: Path, run: Path) -> Path:
    """Six steps of a 24-unit char-LSTM: enough for a real export, not for prose."""
    from training.char_lstm.train import TrainConfig, train

    train(
        TrainConfig(
            corpus=corpus,
            run_dir=run,
            units=24,
            embed_dim=8,
            batch_size=4,
            seq_len=16,
            steps=6,
            eval_every=3,
            eval_streams=2,
            warmup_steps=2,
            threads=1,
        )
    )
    return run


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
