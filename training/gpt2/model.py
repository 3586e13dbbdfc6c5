"""GPT-2 in Keras 3, with weights named as in Hugging Face's `GPT2LMHeadModel`.

Pre-norm transformer blocks (layer norm, causal self-attention, layer norm, GELU
MLP), learned positions, output projection tied to the token embedding, GPT-2's
initialisation (normal 0.02, residual projections scaled by 1/sqrt(2 * layers)).

`to_weights` / `from_weights` convert to and from a flat dict of numpy arrays keyed
by the Hugging Face names (`wte`, `h.0.attn.c_attn.weight`, ...; Conv1D layout, i.e.
[in, out] like a Keras Dense kernel). That dict is the common currency: training
checkpoints, imported checkpoints (HF safetensors, KerasHub presets) and the export
all go through it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import keras
import numpy as np
from keras import ops

# The weights of block i are `h.{i}.` + these, in the order the exported generator indexes them.
BLOCK_WEIGHTS = (
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
)


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int
    n_positions: int = 256
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    def parameters(self) -> int:
        d, layers = self.n_embd, self.n_layer
        block = (
            2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
        )
        return self.vocab_size * d + self.n_positions * d + layers * block + 2 * d


# Sizes from "trains on this laptop" to GPT-2 small (124M, the released model's shape).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 2},
    "laptop": {"n_positions": 256, "n_embd": 256, "n_layer": 4, "n_head": 4},
    "medium-laptop": {"n_positions": 512, "n_embd": 384, "n_layer": 6, "n_head": 6},
    "small": {"n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
}


def preset(name: str, vocab_size: int, **overrides: Any) -> GPT2Config:
    return replace(GPT2Config(vocab_size=vocab_size, **PRESETS[name]), **overrides)


def _normal(std: float) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=std)


@keras.saving.register_keras_serializable(package="talkative")
class Block(keras.layers.Layer):
    def __init__(self, config: GPT2Config, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        c = self.config = config
        d, eps = c.n_embd, c.layer_norm_epsilon
        resid = _normal(0.02 / math.sqrt(2 * c.n_layer))
        self.ln_1 = keras.layers.LayerNormalization(epsilon=eps, name="ln_1")
        self.c_attn = keras.layers.Dense(3 * d, kernel_initializer=_normal(0.02), name="c_attn")
        self.attn_proj = keras.layers.Dense(d, kernel_initializer=resid, name="attn_c_proj")
        self.ln_2 = keras.layers.LayerNormalization(epsilon=eps, name="ln_2")
        self.c_fc = keras.layers.Dense(4 * d, kernel_initializer=_normal(0.02), name="c_fc")
        self.mlp_proj = keras.layers.Dense(d, kernel_initializer=resid, name="mlp_c_proj")
        self.drop = keras.layers.Dropout(c.dropout)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        d = self.config.n_embd
        for layer, width in (
            (self.ln_1, d),
            (self.c_attn, d),
            (self.attn_proj, d),
            (self.ln_2, d),
            (self.c_fc, d),
            (self.mlp_proj, 4 * d),
        ):
            layer.build((None, None, width))
        self.built = True

    def call(self, x: Any, training: bool = False) -> Any:
        c = self.config
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        head = c.n_embd // c.n_head
        qkv = self.c_attn(self.ln_1(x))
        qkv = ops.reshape(qkv, (batch, length, 3, c.n_head, head))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # [3, B, H, T, Dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(head)
        causal = ops.tril(ops.ones((length, length), dtype="bool"))
        scores = ops.where(causal[None, None], scores, ops.cast(-1e9, scores.dtype))
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        weights = self.drop(ops.cast(weights, v.dtype), training=training)
        attended = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        attended = ops.reshape(attended, (batch, length, c.n_embd))
        x = x + self.drop(self.attn_proj(attended), training=training)
        hidden = ops.gelu(self.c_fc(self.ln_2(x)), approximate=True)  # GPT-2's gelu_new
        return x + self.drop(self.mlp_proj(hidden), training=training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Block:
        cfg = GPT2Config(**config.pop("config"))
        return cls(cfg, **config)


class GPT2(keras.Model):
    """ids [B, T] int32 -> logits [B, T, V] float32."""

    def __init__(self, config: GPT2Config, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", "gpt2"), **kwargs)
        self.config = config
        c = config
        self.wte = keras.layers.Embedding(
            c.vocab_size, c.n_embd, embeddings_initializer=_normal(0.02), name="wte"
        )
        self.wpe = keras.layers.Embedding(
            c.n_positions, c.n_embd, embeddings_initializer=_normal(0.01), name="wpe"
        )
        self.drop = keras.layers.Dropout(c.dropout)
        self.blocks = [Block(c, name=f"h_{i}") for i in range(c.n_layer)]
        self.ln_f = keras.layers.LayerNormalization(epsilon=c.layer_norm_epsilon, name="ln_f")

    def build(self, input_shape: Any = None) -> None:
        c = self.config
        self.wte.build((None, None))
        self.wpe.build((None, None))
        for block in self.blocks:
            block.build((None, None, c.n_embd))
        self.ln_f.build((None, None, c.n_embd))
        self.built = True

    def call(self, ids: Any, training: bool = False) -> Any:
        length = ops.shape(ids)[1]
        x = self.wte(ids) + self.wpe(ops.arange(length))[None]
        x = self.drop(x, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.ln_f(x)
        # Tied output projection, in float32 even under mixed precision.
        table = ops.cast(self.wte.embeddings, "float32")
        return ops.matmul(ops.cast(x, "float32"), ops.transpose(table))


def build_model(config: GPT2Config) -> GPT2:
    model = GPT2(config)
    model.build()
    return model


def _block_layers(block: Block) -> dict[str, keras.layers.Layer]:
    return {
        "ln_1": block.ln_1,
        "attn.c_attn": block.c_attn,
        "attn.c_proj": block.attn_proj,
        "ln_2": block.ln_2,
        "mlp.c_fc": block.c_fc,
        "mlp.c_proj": block.mlp_proj,
    }


def to_weights(model: GPT2) -> dict[str, np.ndarray]:
    """The model's weights keyed by Hugging Face GPT2Model names (float32 numpy)."""
    w = {
        "wte.weight": np.asarray(model.wte.embeddings, np.float32),
        "wpe.weight": np.asarray(model.wpe.embeddings, np.float32),
    }
    for i, block in enumerate(model.blocks):
        for name, layer in _block_layers(block).items():
            a, b = (np.asarray(v, np.float32) for v in layer.get_weights())
            w[f"h.{i}.{name}.weight"], w[f"h.{i}.{name}.bias"] = a, b
    w["ln_f.weight"], w["ln_f.bias"] = (np.asarray(v, np.float32) for v in model.ln_f.get_weights())
    return w


def from_weights(model: GPT2, weights: dict[str, np.ndarray]) -> GPT2:
    """Load HF-named weights into a built model; shapes must match exactly."""
    model.wte.set_weights([weights["wte.weight"]])
    model.wpe.set_weights([weights["wpe.weight"]])
    for i, block in enumerate(model.blocks):
        for name, layer in _block_layers(block).items():
            layer.set_weights([weights[f"h.{i}.{name}.weight"], weights[f"h.{i}.{name}.bias"]])
    model.ln_f.set_weights([weights["ln_f.weight"], weights["ln_f.bias"]])
    return model


def config_from_weights(
    weights: dict[str, np.ndarray], n_head: int, layer_norm_epsilon: float = 1e-5
) -> GPT2Config:
    vocab, d = weights["wte.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("h."))
    return GPT2Config(
        vocab_size=int(vocab),
        n_positions=int(weights["wpe.weight"].shape[0]),
        n_embd=int(d),
        n_layer=layers,
        n_head=n_head,
        layer_norm_epsilon=layer_norm_epsilon,
    )
