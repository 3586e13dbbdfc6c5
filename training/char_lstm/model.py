"""The char-LSTM in Keras 3: embedding, stacked LSTMs carrying explicit state, logits.

State goes in and out of the model so training can carry it across consecutive
windows of the text (truncated back-propagation through time), evaluation can read
a held-out book in one pass, and export can reuse the same weights step by step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras


@dataclass(frozen=True)
class CharLSTMConfig:
    vocab_size: int
    embed_dim: int = 64
    units: int = 256
    layers: int = 2
    dropout: float = 0.0

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


def build_model(config: CharLSTMConfig) -> keras.Model:
    """inputs: ids [B, T] + (h, c) per layer; outputs: logits [B, T, V] + new (h, c) per layer."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    states_in = [
        keras.Input(shape=(config.units,), name=f"{kind}{i}")
        for i in range(config.layers)
        for kind in ("h", "c")
    ]
    x = keras.layers.Embedding(config.vocab_size, config.embed_dim, name="embedding")(ids)
    states_out = []
    for i in range(config.layers):
        x, h, c = keras.layers.LSTM(
            config.units, return_sequences=True, return_state=True, name=f"lstm_{i}"
        )(x, initial_state=[states_in[2 * i], states_in[2 * i + 1]])
        states_out += [h, c]
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(config.vocab_size, name="logits")(x)
    return keras.Model([ids, *states_in], [logits, *states_out], name="char_lstm")
