"""Import a pretrained GPT-2 from a local directory and export it under `generate`.

Two layouts are read, both from disk only (this code never downloads):
- Hugging Face: `config.json` (GPT2Config: n_embd, n_layer, n_head, n_positions,
  vocab_size, layer_norm_epsilon) and `model.safetensors`, keys with or without
  the `transformer.` prefix of GPT2LMHeadModel; read with the safetensors package's
  numpy loader, so neither torch nor transformers is needed.
- KerasHub preset: `config.json` naming `GPT2Backbone` and `model.weights.h5`, as
  written by `backbone.save_to_preset(dir)`; loaded with keras-hub (installed
  --no-deps), then its layers are mapped onto the Hugging Face names.

The tokenizer comes from --tokenizer, else the directory's `tokenizer.json`, else
its `vocab.json` + `merges.txt` (HF) or `assets/tokenizer/vocabulary.json` +
`merges.txt` (KerasHub), else, for a 50,257-token model, the original GPT-2 vocabulary.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from talkative_common.cli import command_parser
from training.cli_common import export_options, print_json
from training.gpt2.model import BLOCK_WEIGHTS, GPT2Config


def detect_layout(directory: Path) -> str:
    config_path = directory / "config.json"
    if not config_path.exists():
        raise SystemExit(f"{directory} has no config.json: not a HF or KerasHub checkpoint")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("class_name") == "GPT2Backbone" and (directory / "model.weights.h5").exists():
        return "keras_hub"
    if (directory / "model.safetensors").exists():
        if config.get("model_type", "gpt2") != "gpt2":
            raise SystemExit(f"{directory} holds a {config['model_type']!r} model, not GPT-2")
        return "hf"
    raise SystemExit(
        f"{directory}: expected model.safetensors (Hugging Face) or model.weights.h5 with a "
        "GPT2Backbone config.json (KerasHub preset)"
    )


def read_hf(directory: Path) -> tuple[dict[str, np.ndarray], GPT2Config]:
    from safetensors.numpy import load_file

    hf = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    raw = load_file(str(directory / "model.safetensors"))
    weights = {
        (k[len("transformer.") :] if k.startswith("transformer.") else k): v.astype(np.float32)
        for k, v in raw.items()
    }
    config = GPT2Config(
        vocab_size=int(hf.get("vocab_size", weights["wte.weight"].shape[0])),
        n_positions=int(hf.get("n_positions", weights["wpe.weight"].shape[0])),
        n_embd=int(hf.get("n_embd", weights["wte.weight"].shape[1])),
        n_layer=int(hf["n_layer"]),
        n_head=int(hf["n_head"]),
        layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
    )
    if "lm_head.weight" in weights and not np.array_equal(
        weights["lm_head.weight"], weights["wte.weight"]
    ):
        raise SystemExit("lm_head.weight differs from wte.weight: untied heads are not GPT-2")
    return _checked(weights, config), config


def read_keras_hub(directory: Path) -> tuple[dict[str, np.ndarray], GPT2Config]:
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone.from_preset(str(directory))
    d, heads = backbone.hidden_dim, backbone.num_heads
    w: dict[str, np.ndarray] = {
        "wte.weight": np.asarray(backbone.token_embedding.embeddings, np.float32),
        "wpe.weight": np.asarray(backbone.position_embedding.position_embeddings, np.float32),
    }
    for i in range(backbone.num_layers):
        layer = backbone.get_layer(f"transformer_layer_{i}")
        attn = layer._self_attention_layer
        qkv_w, qkv_b = [], []
        for dense in (attn._query_dense, attn._key_dense, attn._value_dense):
            kernel, bias = (np.asarray(v, np.float32) for v in dense.get_weights())
            qkv_w.append(kernel.reshape(d, d))  # [D, H, Dh] -> [D, D], heads outermost
            qkv_b.append(bias.reshape(d))
        out_kernel, out_bias = (np.asarray(v, np.float32) for v in attn._output_dense.get_weights())
        p = f"h.{i}."
        w[p + "attn.c_attn.weight"] = np.concatenate(qkv_w, axis=1)
        w[p + "attn.c_attn.bias"] = np.concatenate(qkv_b)
        w[p + "attn.c_proj.weight"] = out_kernel.reshape(d, d)  # [H, Dh, D] -> [D, D]
        w[p + "attn.c_proj.bias"] = out_bias
        for ours, theirs in (
            ("ln_1", layer._self_attention_layer_norm),
            ("ln_2", layer._feedforward_layer_norm),
            ("mlp.c_fc", layer._feedforward_intermediate_dense),
            ("mlp.c_proj", layer._feedforward_output_dense),
        ):
            a, b = (np.asarray(v, np.float32) for v in theirs.get_weights())
            w[p + ours + ".weight"], w[p + ours + ".bias"] = a, b
    w["ln_f.weight"], w["ln_f.bias"] = (
        np.asarray(v, np.float32) for v in backbone.layer_norm.get_weights()
    )
    config = GPT2Config(
        vocab_size=backbone.vocabulary_size,
        n_positions=backbone.max_sequence_length,
        n_embd=d,
        n_layer=backbone.num_layers,
        n_head=heads,
    )
    return _checked(w, config), config


def _checked(weights: dict[str, np.ndarray], config: GPT2Config) -> dict[str, np.ndarray]:
    d = config.n_embd
    need: dict[str, tuple[int, ...]] = {
        "wte.weight": (config.vocab_size, d),
        "wpe.weight": (config.n_positions, d),
    }
    for i in range(config.n_layer):
        for key in BLOCK_WEIGHTS:
            need[f"h.{i}.{key}"] = ()
    need |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    missing = sorted(k for k in need if k not in weights)
    if missing:
        raise SystemExit(f"the checkpoint lacks {len(missing)} GPT-2 weights, e.g. {missing[:3]}")
    for key, shape in need.items():
        if shape and weights[key].shape != shape:
            raise SystemExit(f"{key} has shape {weights[key].shape}, expected {shape}")
    if weights["h.0.attn.c_attn.weight"].shape != (d, 3 * d):
        raise SystemExit("attn.c_attn.weight is not [n_embd, 3 * n_embd] (Conv1D layout)")
    return {k: weights[k] for k in need}


def find_tokenizer(directory: Path, layout: str, vocab_size: int, out: Path) -> Path:
    """Write the checkpoint's tokenizer as tokenizer.json at `out` and return it."""
    from training.gpt2.tokenizer import original_gpt2

    if (directory / "tokenizer.json").exists() and layout == "hf":
        return directory / "tokenizer.json"
    candidates = [
        (directory / "vocab.json", directory / "merges.txt"),
        (
            directory / "assets" / "tokenizer" / "vocabulary.json",
            directory / "assets" / "tokenizer" / "merges.txt",
        ),
    ]
    for vocab, merges in candidates:
        if vocab.exists() and merges.exists():
            original_gpt2(vocab, merges).save(str(out))
            return out
    if vocab_size == 50257:
        original_gpt2().save(str(out))
        return out
    raise SystemExit(
        f"no tokenizer found in {directory} for a {vocab_size}-token model; pass --tokenizer"
    )


def import_checkpoint(
    directory: Path,
    out_dir: Path,
    *,
    name: str,
    language: str,
    tokenizer: Path | None = None,
    licence: str = "see the checkpoint's own licence",
) -> dict[str, Any]:
    from training.gpt2.export import export_weights

    layout = detect_layout(directory)
    weights, config = read_hf(directory) if layout == "hf" else read_keras_hub(directory)
    card = {
        "name": name,
        "language": language,
        "description": f"GPT-2 ({config.n_layer} layers x {config.n_embd}, {config.n_head} "
        f"heads, context {config.n_positions}) imported from a "
        f"{'Hugging Face' if layout == 'hf' else 'KerasHub'} checkpoint.",
        "imported_from": {"layout": layout, "directory": str(directory)},
        "held_out_loss": {},
        "licence": licence,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tok = tokenizer or find_tokenizer(
            directory, layout, config.vocab_size, Path(tmp) / "tokenizer.json"
        )
        return export_weights(weights, config, tok, out_dir, card)


def main(argv: list[str] | None = None) -> None:
    """Export a local pretrained GPT-2 checkpoint (Hugging Face config.json + model.safetensors, or
    a KerasHub GPT2Backbone preset directory) as a TF Serving model version under the `generate`
    contract. Nothing is downloaded."""
    p = command_parser(
        main,
        parents=[
            export_options(
                out_example="serving/models/gpt2/1",
                name=None,
                language="en",
                what="the model",
                run_dir=False,
            )
        ],
    )
    p.add_argument("checkpoint", type=Path, help="the checkpoint directory")
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="a tokenizer.json to use instead of the one found in the directory",
    )
    p.add_argument(
        "--licence", default="see the checkpoint's own licence", help="licence for the model card"
    )
    a = vars(p.parse_args(argv))
    print_json(import_checkpoint(a.pop("checkpoint"), a.pop("out"), **a))


if __name__ == "__main__":
    main()
