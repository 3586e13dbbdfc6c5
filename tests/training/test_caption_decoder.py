"""The caption decoder: vocabulary, masked teacher-forced loss, decoding with the real layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training.captioner.decoder import (
    DecoderConfig,
    DecoderStep,
    build_decoder,
    captions,
    decode,
    encoder_features,
    masked_loss,
    pad_batch,
    teacher_forcing,
)
from training.captioner.vocab import END_ID, PAD_ID, START_ID, UNK_ID, WordVocab, tokenize

CAPTIONS = ["A cat sitting on a mat.", "A red car on the road.", "A cup of coffee on a table."]


def test_tokenize_and_vocabulary(tmp_path: Path) -> None:
    assert tokenize("A dog's ball, on the lawn!") == [
        "a",
        "dog's",
        "ball",
        ",",
        "on",
        "the",
        "lawn",
        "!",
    ]
    vocab = WordVocab.build([*CAPTIONS, "a cat."], min_count=2)
    assert vocab.words[:4] == ("<pad>", "<start>", "<end>", "<unk>")
    assert vocab.words[4:7] == ("a", ".", "on")  # by frequency: 6, 4 and 3 times
    assert "coffee" not in vocab.words  # seen once
    ids = vocab.encode("A cat on a zebra.", max_len=20)
    assert ids[0] == START_ID and ids[-1] == END_ID and UNK_ID in ids
    assert vocab.decode(ids) == "a cat on a <unk>."
    assert len(vocab.encode("a " * 50, max_len=20)) == 22
    vocab.save(tmp_path / "vocab.json")
    assert WordVocab.load(tmp_path / "vocab.json") == vocab
    (tmp_path / "bad.json").write_text('{"words": ["a", "b"]}')
    with pytest.raises(ValueError):
        WordVocab.load(tmp_path / "bad.json")


def test_padding_is_masked_out_of_the_loss() -> None:
    targets = tf.constant([[5, 6, END_ID, PAD_ID, PAD_ID]])
    logits = tf.random.stateless_normal([1, 5, 8], seed=[1, 2])
    changed = tf.concat([logits[:, :3], logits[:, 3:] * 100 + 7], axis=1)
    assert float(masked_loss(targets, logits)) == pytest.approx(
        float(masked_loss(targets, changed))
    )
    # Uniform logits cost log(V) per real token.
    assert float(masked_loss(targets, tf.zeros([1, 5, 8]))) == pytest.approx(np.log(8), rel=1e-6)
    inputs, shifted = teacher_forcing(tf.constant([[START_ID, 5, 6, END_ID, PAD_ID]]))
    assert inputs.numpy().tolist() == [[START_ID, 5, 6, END_ID]]
    assert shifted.numpy().tolist() == [[5, 6, END_ID, PAD_ID]]


def test_step_by_step_decoding_matches_the_training_graph() -> None:
    keras_seed = 3
    tf.keras.utils.set_random_seed(keras_seed)
    model = build_decoder(DecoderConfig(vocab_size=12, feature_dim=6, embed_dim=5, units=7))
    features = tf.random.stateless_normal([2, 6], seed=[4, 5])
    tokens = tf.constant([[START_ID, 4, 9, 5], [START_ID, 6, 6, 11]])
    full = tf.nn.log_softmax(model([features, tokens], training=False))
    step = DecoderStep(model)
    state = step.initial_state(features)
    for t in range(tokens.shape[1]):
        log_probs, state = step(tokens[:, t], state)
        np.testing.assert_allclose(log_probs.numpy(), full[:, t].numpy(), atol=1e-5)


def test_a_trained_decoder_recalls_each_caption_in_the_graph() -> None:
    tf.keras.utils.set_random_seed(0)
    vocab = WordVocab.build(CAPTIONS)
    features = tf.constant(np.random.default_rng(0).normal(size=(3, 16)), tf.float32)
    tokens = pad_batch([vocab.encode(c, max_len=20) for c in CAPTIONS])
    model = build_decoder(
        DecoderConfig(len(vocab), feature_dim=16, embed_dim=16, units=32, dropout=0.0)
    )
    optimizer = tf.keras.optimizers.Adam(0.02)
    inputs, targets = teacher_forcing(tf.constant(tokens))

    @tf.function
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = masked_loss(targets, model([features, inputs], training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    for _ in range(150):
        loss = train_step()
    assert float(loss) < 0.05

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32)])
    def in_graph(f: tf.Tensor):
        return decode(model, f, beam_size=3, max_len=12)

    for beam in (1, 3):
        result = in_graph(features) if beam == 3 else decode(model, features, beam_size=1)
        best = [c[0] for c in captions(result, vocab)]
        assert [text for text, _ in best] == [c.lower() for c in CAPTIONS]
        assert all(-0.5 < lp <= 0 for _, lp in best)
    ranked = captions(in_graph(features), vocab)[0]
    assert ranked[0][1] >= ranked[1][1] >= ranked[2][1]


def test_unknown_feature_kinds_are_refused() -> None:
    # A typo must fail loudly, not silently feed the decoder the pooled features.
    with pytest.raises(ValueError, match="unknown feature kind"):
        DecoderConfig(vocab_size=12, features="probs")
    outputs = {"pooled": tf.zeros([1, 1280]), "logits": tf.zeros([1, 1000])}
    with pytest.raises(ValueError, match="unknown feature kind"):
        encoder_features(outputs, "probs")
    probs = encoder_features(outputs, "class_probs")
    np.testing.assert_allclose(probs.numpy().sum(), 1.0, rtol=1e-6)
