"""Export a trained char-LSTM as a SavedModel meeting the `generate` contract (DESIGN.md).

The graph holds the whole decoding loop: it reads the right-padded prompt once,
then samples one character per step while carrying each layer's (h, c) state, so
a new character costs one LSTM step, never a pass over the growing prefix. Every
input has the batch dimension first (TF Serving batches along it), and sampling
is per row: temperature, top-k, top-p and the seed of one row never change
another row's text, so a request gives the same output alone or batched.

Sampling (per-row knobs, reproducible noise) is `training/sampling.py`, shared with
the GPT-2 export.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

from talkative_common.cli import command_parser
from training import sampling
from training.cli_common import checkpoint_option, export_options, print_json

MAX_NEW_TOKENS_CAP = 4096  # hard bound on the loop, whatever a caller asks


class CharLSTMGenerator(sampling.TextGenerator):
    """Core-ops-only generator built from a trained model's weights."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        layers: int,
        units: int,
        max_new_tokens_cap: int = MAX_NEW_TOKENS_CAP,
    ) -> None:
        super().__init__(name="char_lstm")
        self.layers, self.units, self.cap = layers, units, max_new_tokens_cap
        emb = weights["embedding"]
        self.vocab_size = emb.shape[0]
        # Kept unfolded too (small) so the exact Keras model can be rebuilt from the export.
        self.embedding = tf.Variable(emb, trainable=False, name="embedding")
        self.kernel_0 = tf.Variable(weights["lstm_0/kernel"], trainable=False, name="kernel_0")
        # Layer 0's input projection folded into the embedding: one gather per step.
        self.input_table = tf.Variable(
            emb @ weights["lstm_0/kernel"], trainable=False, name="input_table"
        )
        self.kernels = [
            tf.Variable(weights[f"lstm_{i}/kernel"], trainable=False, name=f"kernel_{i}")
            for i in range(1, layers)
        ]
        self.recurrent = [
            tf.Variable(
                weights[f"lstm_{i}/recurrent_kernel"], trainable=False, name=f"recurrent_{i}"
            )
            for i in range(layers)
        ]
        self.biases = [
            tf.Variable(weights[f"lstm_{i}/bias"], trainable=False, name=f"bias_{i}")
            for i in range(layers)
        ]
        self.out_w = tf.Variable(weights["logits/kernel"], trainable=False, name="out_w")
        self.out_b = tf.Variable(weights["logits/bias"], trainable=False, name="out_b")
        vmix = sampling.vocab_mix(self.vocab_size)
        self.vocab_mix = tf.Variable(vmix, trainable=False, name="vocab_mix")

    def _step(self, ids: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One character for every row: returns the top layer's h and the new states."""
        x_proj = tf.gather(self.input_table, ids)
        new_states: list[tf.Tensor] = []
        h_in = None
        for i in range(self.layers):
            h, c = states[2 * i], states[2 * i + 1]
            z = x_proj if i == 0 else tf.matmul(h_in, self.kernels[i - 1])
            z = z + tf.matmul(h, self.recurrent[i]) + self.biases[i]
            zi, zf, zg, zo = tf.split(z, 4, axis=1)  # Keras gate order: i, f, c, o
            c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zg)
            h = tf.sigmoid(zo) * tf.tanh(c)
            new_states += [h, c]
            h_in = h
        return h_in, new_states

    def _logits(self, h: tf.Tensor) -> tf.Tensor:
        return tf.matmul(h, self.out_w) + self.out_b

    def decode(self, inputs: sampling.GenerateInputs) -> dict[str, tf.Tensor]:
        prompt_ids, prompt_lengths, max_new_tokens, temperature, top_k, top_p, seed = inputs
        batch, width = tf.shape(prompt_ids)[0], tf.shape(prompt_ids)[1]
        ids = tf.clip_by_value(prompt_ids, 0, self.vocab_size - 1)
        lengths = tf.clip_by_value(prompt_lengths, 1, tf.maximum(width, 1))
        zeros = tf.zeros([batch, self.units])
        states = [zeros] * (2 * self.layers)

        # Read the prompt: rows whose prompt has ended keep their state unchanged.
        def read(t: tf.Tensor, states: list[tf.Tensor], top: tf.Tensor) -> tuple:
            new_top, new_states = self._step(ids[:, t], states)
            live = (t < lengths)[:, None]
            return (
                t + 1,
                [tf.where(live, n, o) for n, o in zip(new_states, states, strict=True)],
                tf.where(live, new_top, top),
            )

        _, states, top = tf.while_loop(
            lambda t, *_: t < tf.reduce_max(lengths), read, (0, states, zeros)
        )

        wanted = tf.clip_by_value(max_new_tokens, 0, self.cap)
        steps = tf.reduce_max(tf.concat([wanted, [0]], axis=0))
        keys = sampling.row_keys(seed)
        greedy = temperature <= 0.0

        def sample(
            n: tf.Tensor, states: list[tf.Tensor], top: tf.Tensor, out: tf.TensorArray
        ) -> tuple:
            filtered = sampling.filter_logits(self._logits(top), temperature, top_k, top_p)
            noisy = filtered + sampling.gumbel_noise(keys, n, self.vocab_mix)
            token = tf.where(
                greedy,
                tf.argmax(filtered, axis=1, output_type=tf.int32),
                tf.argmax(noisy, axis=1, output_type=tf.int32),
            )
            token = tf.where(n < wanted, token, 0)
            top, states = self._step(token, states)
            return n + 1, states, top, out.write(n, token)

        out = tf.TensorArray(tf.int32, size=steps, element_shape=tf.TensorShape([None]))
        _, _, _, out = tf.while_loop(
            lambda n, *_: n < steps, sample, (0, states, top, out), maximum_iterations=self.cap
        )
        token_ids = tf.reshape(tf.transpose(out.stack()), [batch, steps])
        return {"token_ids": token_ids, "lengths": wanted}


def weights_from_keras(model: Any, layers: int) -> dict[str, np.ndarray]:
    w = {"embedding": model.get_layer("embedding").get_weights()[0]}
    for i in range(layers):
        kernel, recurrent, bias = model.get_layer(f"lstm_{i}").get_weights()
        w |= {
            f"lstm_{i}/kernel": kernel,
            f"lstm_{i}/recurrent_kernel": recurrent,
            f"lstm_{i}/bias": bias,
        }
    w["logits/kernel"], w["logits/bias"] = model.get_layer("logits").get_weights()
    return w


def weights_from_export(loaded: Any) -> dict[str, np.ndarray]:
    """The Keras layer weights back from a loaded export (inverse of weights_from_keras)."""
    w = {
        "embedding": loaded.embedding.numpy(),
        "lstm_0/kernel": loaded.kernel_0.numpy(),
        "logits/kernel": loaded.out_w.numpy(),
        "logits/bias": loaded.out_b.numpy(),
    }
    for i in range(len(loaded.recurrent)):
        if i:
            w[f"lstm_{i}/kernel"] = loaded.kernels[i - 1].numpy()
        w[f"lstm_{i}/recurrent_kernel"] = loaded.recurrent[i].numpy()
        w[f"lstm_{i}/bias"] = loaded.biases[i].numpy()
    return w


def load_keras_from_export(export_dir: Path) -> Any:
    """The Keras training model with the exported weights: the baseline benchmarks compare to."""
    from training.char_lstm.model import CharLSTMConfig, build_model

    card = json.loads((export_dir / "assets.extra" / "model_card.json").read_text())
    model = build_model(CharLSTMConfig(**card["architecture"]))
    weights = weights_from_export(tf.saved_model.load(str(export_dir)))
    model.get_layer("embedding").set_weights([weights["embedding"]])
    for i in range(card["architecture"]["layers"]):
        model.get_layer(f"lstm_{i}").set_weights(
            [weights[f"lstm_{i}/{k}"] for k in ("kernel", "recurrent_kernel", "bias")]
        )
    model.get_layer("logits").set_weights([weights["logits/kernel"], weights["logits/bias"]])
    return model


def export_run(
    run_dir: Path, out_dir: Path, *, name: str, language: str, checkpoint: str = "best"
) -> dict[str, Any]:
    """Build the SavedModel, vocab and model card for a finished training run."""
    from training.char_lstm.model import CharLSTMConfig, build_model
    from training.char_lstm.vocab import CharVocab

    config = json.loads((run_dir / "config.json").read_text())
    mcfg = CharLSTMConfig(**config["model"])
    model = build_model(mcfg)
    model.load_weights(run_dir / "checkpoints" / f"{checkpoint}.weights.h5")
    generator = CharLSTMGenerator(weights_from_keras(model, mcfg.layers), mcfg.layers, mcfg.units)
    extra = sampling.save_generator(generator, out_dir)
    CharVocab.load(run_dir / "vocab.json").save(extra / "vocab.json")
    result = json.loads((run_dir / "result.json").read_text())
    corpus_dir = Path(config["corpus"])
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    card = {
        "name": name,
        "kind": "char_lstm",
        "language": language,
        "description": f"Character-level LSTM ({mcfg.layers} x {mcfg.units} units) trained on "
        f"{manifest['source']}.",
        "signature": sampling.GENERATE_SIGNATURE,
        "tokenizer": {"type": "characters", "file": "vocab.json", "size": mcfg.vocab_size},
        "training_corpus": {
            "name": manifest["name"],
            "source": manifest["source"],
            "licence": manifest["licence"],
            "split_rule": manifest["split_rule"],
            "train_chars": manifest["files"]["train.txt"]["chars"],
            "valid_chars": manifest["files"]["valid.txt"]["chars"],
            "train_sha256": manifest["files"]["train.txt"]["sha256"],
            "valid_documents": manifest["documents"]["valid"],
        },
        "architecture": mcfg.to_dict(),
        "parameters": int(model.count_params()),
        "training": {k: config[k] for k in ("steps", "batch_size", "seq_len", "lr", "seed")}
        | {"chars_seen": result["chars_seen"]},
        "held_out_loss": {
            "nats_per_char": round(result["best_valid_nats_per_char"], 4),
            "bits_per_char": round(result["best_valid_nats_per_char"] / np.log(2), 4),
        },
        "max_new_tokens_cap": generator.cap,
        "licence": "model weights: Apache-2.0; training text: " + manifest["licence"],
        "date": datetime.now(UTC).date().isoformat(),
    }
    sampling.write_model_card(extra, card)
    return card


def main(argv: list[str] | None = None) -> None:
    """Export a trained char-LSTM run as a TF Serving model version: SavedModel with the `generate`
    signature, assets.extra/vocab.json and assets.extra/model_card.json."""
    p = command_parser(
        main,
        parents=[
            export_options(out_example="serving/models/char_lstm_en/1", name=None, language=None)
        ],
    )
    checkpoint_option(p)
    a = p.parse_args(argv)
    print_json(
        export_run(a.run_dir, a.out, name=a.name, language=a.language, checkpoint=a.checkpoint)
    )


if __name__ == "__main__":
    main()
