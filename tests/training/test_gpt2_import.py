"""Importing pretrained GPT-2 checkpoints the test writes itself (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import save_file

from training.gpt2.import_checkpoint import import_checkpoint
from training.gpt2.model import build_model, from_weights, preset, to_weights
from training.gpt2.tokenizer import train_bpe

VOCAB = 300


def greedy(next_logits: Any, prompt: list[int], n: int) -> list[int]:
    seq, out = list(prompt), []
    for _ in range(n):
        token = int(np.argmax(next_logits(seq)))
        out.append(token)
        seq.append(token)
    return out


def exported_greedy(export: Path, prompt: list[int], n: int) -> list[int]:
    fn = tf.saved_model.load(str(export)).signatures["generate"]
    out = fn(
        prompt_ids=tf.constant([prompt], tf.int32),
        prompt_lengths=tf.constant([len(prompt)], tf.int32),
        max_new_tokens=tf.constant([n], tf.int32),
        temperature=tf.constant([0.0]),
        top_k=tf.constant([0]),
        top_p=tf.constant([1.0]),
        seed=tf.constant([0], tf.int64),
    )
    return [int(t) for t in out["token_ids"].numpy()[0, : int(out["lengths"][0])]]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    texts = ["And the king said unto the people, Go ye and sow the field."] * 40
    train_bpe(texts + ["Et le roi dit: voilà l'été."] * 40, VOCAB, show_progress=False).save(
        str(path)
    )
    return path


@pytest.fixture(scope="module")
def reference() -> Any:
    """A small GPT-2 with random (seeded) weights: the checkpoint's ground truth."""
    import keras

    keras.utils.set_random_seed(11)
    model = build_model(preset("tiny", VOCAB))
    # Larger random weights than GPT-2's init, so greedy decoding is not one token repeated.
    weights = {k: v * (8.0 if v.ndim == 2 else 1.0) for k, v in to_weights(model).items()}
    return from_weights(model, weights)


def write_hf_checkpoint(directory: Path, model: Any, tokenizer_json: Path) -> None:
    """What GPT2LMHeadModel.save_pretrained writes, written with numpy only."""
    directory.mkdir(parents=True)
    c = model.config
    tensors = {f"transformer.{k}": v for k, v in to_weights(model).items()}
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"].copy()
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.n_positions,
        "n_ctx": c.n_positions,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "layer_norm_epsilon": c.layer_norm_epsilon,
        "activation_function": "gelu_new",
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())


def test_hf_checkpoint_imports_and_generates_like_the_original(
    reference: Any, tokenizer_json: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "hf"
    write_hf_checkpoint(checkpoint, reference, tokenizer_json)
    out = tmp_path / "models" / "imported" / "1"
    card = import_checkpoint(checkpoint, out, name="imported", language="en")
    assert card["kind"] == "gpt2" and card["imported_from"]["layout"] == "hf"
    assert card["parameters"] == reference.count_params()
    assert (out / "assets.extra" / "tokenizer.json").exists()
    prompt = [5, 17, 42, 8]

    def keras_logits(seq: list[int]) -> np.ndarray:
        return np.asarray(reference(np.asarray([seq], np.int32))[0, -1])

    expected = greedy(keras_logits, prompt, 12)
    assert exported_greedy(out, prompt, 12) == expected
    assert len(set(expected)) > 1


def test_hf_checkpoint_matches_transformers(
    reference: Any, tokenizer_json: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    checkpoint = tmp_path / "hf"
    write_hf_checkpoint(checkpoint, reference, tokenizer_json)
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(checkpoint)).eval()
    out = tmp_path / "models" / "imported" / "1"
    import_checkpoint(checkpoint, out, name="imported", language="en")
    prompt = [5, 17, 42, 8]

    def hf_logits(seq: list[int]) -> np.ndarray:
        with torch.no_grad():
            return hf(torch.tensor([seq])).logits[0, -1].numpy()

    assert exported_greedy(out, prompt, 12) == greedy(hf_logits, prompt, 12)


def test_keras_hub_preset_imports_and_generates_like_the_backbone(
    tokenizer_json: Path, tmp_path: Path
) -> None:
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    keras.utils.set_random_seed(5)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=128,
        max_sequence_length=64,
        dropout=0.0,
    )
    for var in backbone.weights:  # random biases and norms too, so every mapping matters
        var.assign(np.random.default_rng(len(var.path)).normal(0, 0.5, var.shape))
    preset_dir = tmp_path / "preset"
    backbone.save_to_preset(str(preset_dir))
    out = tmp_path / "models" / "hub" / "1"
    card = import_checkpoint(preset_dir, out, name="hub", language="en", tokenizer=tokenizer_json)
    assert card["imported_from"]["layout"] == "keras_hub"
    table = np.asarray(backbone.token_embedding.embeddings)

    def hub_logits(seq: list[int]) -> np.ndarray:
        ids = np.asarray([seq], np.int32)
        hidden = backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        return np.asarray(hidden)[0, -1] @ table.T

    prompt = [3, 9, 27]
    assert exported_greedy(out, prompt, 10) == greedy(hub_logits, prompt, 10)


def test_bad_checkpoints_are_refused_with_a_reason(
    reference: Any, tokenizer_json: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"no config\.json"):
        import_checkpoint(empty, tmp_path / "o1", name="x", language="en")
    broken = tmp_path / "broken"
    write_hf_checkpoint(broken, reference, tokenizer_json)
    tensors = {f"transformer.{k}": v for k, v in to_weights(reference).items()}
    del tensors["transformer.h.1.mlp.c_fc.weight"]
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(SystemExit, match="lacks 1 GPT-2 weights"):
        import_checkpoint(broken, tmp_path / "o2", name="x", language="en")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"x": np.zeros(1, np.float32)}, str(other / "model.safetensors"))
    with pytest.raises(SystemExit, match="not GPT-2"):
        import_checkpoint(other, tmp_path / "o3", name="x", language="en")
