"""GPT-2 export speed against HF transformers; bits per character against the char-LSTM.

Speed, in one run, same configuration and same weights (read back from the export):
- the exported SavedModel (`generate`, KV cache in the graph, sampling in the graph);
- Hugging Face `transformers` GPT2LMHeadModel on PyTorch CPU, `generate()` with its
  KV cache (use_cache=True), the same sampling knobs, never stopping early;
- the same graph without the cache (the whole prefix recomputed for each token).
Tokens per second at batch 1 and batch 8 (median of --runs), and the ratios to
transformers, which is the baseline. TF and torch get the same number of threads.
For an export with a sliding window, also the cost of a token past the context
against one inside it, at batch 1 and 8 (target: at most 1.2x). The newest version
of each model is measured unless --version says otherwise.

Quality: held-out nats and bits per character of the GPT-2 and of the char-LSTM
of the same language on the same text (the corpus's whole valid.txt), both
measured here, in this run.

    python bench/gpt2.py [--model gpt2_en] [--new-tokens 128] [--runs 3] [--threads 2]

Needs torch and transformers (bench only; never the services).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402

PROMPTS = {"en": "And it came to pass, when the king", "fr": "Et il arriva que le roi"}
TEMPERATURE, TOP_K = 0.8, 40


def hf_model(weights: dict[str, np.ndarray], config: Any, end: int) -> Any:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.n_positions,
            n_embd=config.n_embd,
            n_layer=config.n_layer,
            n_head=config.n_head,
            layer_norm_epsilon=config.layer_norm_epsilon,
            activation_function="gelu_new",
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=end,
            eos_token_id=end,
        )
    ).eval()
    state = {f"transformer.{k}": torch.from_numpy(v.copy()) for k, v in weights.items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or any(
        not k.endswith(("attn.bias", "masked_bias", "lm_head.weight")) for k in missing
    ):
        raise SystemExit(f"weights do not fit transformers' GPT-2: {missing} {unexpected}")
    hf.tie_weights()
    return hf


def time_hf(hf: Any, ids: list[int], batch: int, new_tokens: int, seed: int) -> float:
    import torch

    torch.manual_seed(seed)
    x = torch.tensor([ids] * batch)
    started = time.perf_counter()
    with torch.no_grad():
        out = hf.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=True,
            temperature=TEMPERATURE,
            top_k=TOP_K,
            top_p=1.0,
            use_cache=True,
            pad_token_id=hf.config.eos_token_id,
        )
    elapsed = time.perf_counter() - started
    assert out.shape == (batch, len(ids) + new_tokens)
    return batch * new_tokens / elapsed


def time_graph(fn: Any, ids: list[int], batch: int, new_tokens: int, seed: int) -> float:
    """Tokens per second; only tokens actually produced count (a row may stop at the end token)."""
    produced, seconds = run_graph(fn, ids, batch, new_tokens, seed)
    return produced / seconds


def run_graph(fn: Any, ids: list[int], batch: int, new_tokens: int, seed: int) -> tuple[int, float]:
    """(tokens produced, seconds) of one call of a `generate` signature."""
    import tensorflow as tf

    started = time.perf_counter()
    out = fn(
        prompt_ids=tf.constant([ids] * batch, tf.int32),
        prompt_lengths=tf.fill([batch], len(ids)),
        max_new_tokens=tf.fill([batch], new_tokens),
        temperature=tf.fill([batch], TEMPERATURE),
        top_k=tf.fill([batch], TOP_K),
        top_p=tf.fill([batch], 1.0),
        seed=tf.constant(np.arange(seed, seed + batch), tf.int64),
    )
    produced = int(out["lengths"].numpy().sum())
    return produced, time.perf_counter() - started


def past_the_window(
    export: Any, ids: list[int], context: int, runs: int, batch: int
) -> tuple[float, float]:
    """(seconds per token inside the context, seconds per token past it), medians.

    Inside: as many tokens as the context holds after the prompt. Past: three contexts'
    worth; its tokens beyond the first call's count are charged the time beyond it, so
    the sliding window's re-reads are all in the second figure. Both calls use the same
    seeds, so the long one repeats the short one's tokens before going on."""
    inside_n = context - len(ids)
    long_n = 3 * context

    def cost(seed: int) -> tuple[float, float]:
        n_in, t_in = run_graph(export, ids, batch, inside_n, seed)
        n_long, t_long = run_graph(export, ids, batch, long_n, seed)
        return t_in / n_in, (t_long - t_in) / max(1, n_long - n_in)

    cost(0)  # warm-up: tracing at both lengths
    measured = [cost(r + 1) for r in range(runs)]
    return (
        statistics.median(m[0] for m in measured),
        statistics.median(m[1] for m in measured),
    )


def median_rate(runs: int, measure: Any) -> float:
    measure(0)  # warm-up: tracing, allocations
    return statistics.median(measure(r + 1) for r in range(runs))


def speed(path: Path, new_tokens: int, runs: int) -> dict[str, float]:
    import tensorflow as tf

    from training.gpt2.export import GPT2Generator, weights_from_export
    from training.gpt2.tokenizer import encode, load

    card = json.loads((path / "assets.extra" / "model_card.json").read_text())
    weights, config, end = weights_from_export(path)
    tok = load(path / "assets.extra" / "tokenizer.json")
    ids = encode(tok, PROMPTS.get(card["language"], PROMPTS["en"]))
    new_tokens = min(new_tokens, config.n_positions - len(ids))
    export = tf.saved_model.load(str(path)).signatures["generate"]
    no_cache = GPT2Generator(weights, config, end, use_cache=False)
    hf = hf_model(weights, config, end)
    print(
        f"{card['name']}: {card['parameters']:,} parameters, {config.n_layer}x{config.n_embd}, "
        f"vocab {config.vocab_size}; {len(ids)} prompt tokens + {new_tokens} new, "
        f"T={TEMPERATURE}, top-k {TOP_K}; median of {runs} runs"
    )
    row: dict[str, float] = {}
    for batch in (1, 8):
        rates = {
            "transformers (PyTorch, KV cache)": median_rate(
                runs, lambda s, b=batch: time_hf(hf, ids, b, new_tokens, s)
            ),
            "export (KV cache in graph)": median_rate(
                runs, lambda s, b=batch: time_graph(export, ids, b, new_tokens, s)
            ),
            "export without cache": median_rate(
                max(1, runs // 3),
                lambda s, b=batch: time_graph(no_cache.generate, ids, b, new_tokens, s),
            ),
        }
        base = rates["transformers (PyTorch, KV cache)"]
        for name, rate in rates.items():
            print(f"  batch {batch}: {name:34s} {rate:9,.0f} tokens/s  {rate / base:5.2f}x")
        row |= {
            f"batch{batch}_transformers_tps": base,
            f"batch{batch}_export_tps": rates["export (KV cache in graph)"],
            f"batch{batch}_export_nocache_tps": rates["export without cache"],
            f"batch{batch}_export_vs_transformers": rates["export (KV cache in graph)"] / base,
        }
    if "sliding_window" in card:
        for batch in (1, 8):
            inside, past = past_the_window(export, ids, config.n_positions, runs, batch)
            print(
                f"  batch {batch}: past the {config.n_positions}-token context (sliding window): "
                f"{past * 1000:.2f} ms/token against {inside * 1000:.2f} inside, "
                f"{past / inside:.2f}x (target: at most 1.20x)"
            )
            row[f"batch{batch}_past_window_vs_inside"] = past / inside
    return row


def bits_per_char(path: Path, char_lstm: Path | None) -> dict[str, float]:
    import tensorflow as tf

    from training.char_lstm.export import load_keras_from_export
    from training.char_lstm.train import evaluate as lstm_evaluate
    from training.char_lstm.vocab import CharVocab
    from training.gpt2.export import weights_from_export
    from training.gpt2.model import build_model, from_weights
    from training.gpt2.tokenizer import load
    from training.gpt2.train import evaluate, heldout_ids

    card = json.loads((path / "assets.extra" / "model_card.json").read_text())
    corpus = ROOT / "data" / "corpora" / card["training_corpus"]["name"]
    text = (corpus / "valid.txt").read_text(encoding="utf-8")
    weights, config, end = weights_from_export(path)
    model = from_weights(build_model(config), weights)
    ids = heldout_ids(load(path / "assets.extra" / "tokenizer.json"), text, end)
    stride = int(card["held_out_loss"].get("eval_stride", config.n_positions // 2))
    gpt2 = evaluate(model, ids, config.n_positions, stride) / len(text)
    row = {"gpt2_nats_per_char": gpt2, "gpt2_bits_per_char": gpt2 / math.log(2)}
    print(
        f"{card['name']}: held-out {corpus.name}/valid.txt ({len(text):,} chars): "
        f"{gpt2:.4f} nats/char = {gpt2 / math.log(2):.4f} bits/char"
    )
    if char_lstm is None or not (char_lstm / "saved_model.pb").exists():
        print(f"  char-LSTM: no export at {char_lstm}; comparison skipped")
        return row
    lstm_card = json.loads((char_lstm / "assets.extra" / "model_card.json").read_text())
    vocab = CharVocab.load(char_lstm / "assets.extra" / "vocab.json")
    known = "".join(c for c in text if c in set(vocab.chars))
    lstm_model = load_keras_from_export(char_lstm)
    arch = lstm_card["architecture"]
    lstm = lstm_evaluate(
        lstm_model, vocab.encode(known), 16, arch["units"], arch["layers"]
    )  # the streams its own training used by default
    del tf
    row |= {"char_lstm_nats_per_char": lstm, "char_lstm_bits_per_char": lstm / math.log(2)}
    verdict = "better" if gpt2 < lstm else "WORSE"
    print(
        f"  {lstm_card['name']} on the same text: {lstm:.4f} nats/char = "
        f"{lstm / math.log(2):.4f} bits/char; GPT-2 is {verdict} "
        f"({gpt2 / lstm:.3f} of the char-LSTM's loss)"
    )
    return row


def main(argv: list[str] | None = None) -> None:
    p = bench_parser(main, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    repository_option(p, "model repository", flag="--models-dir")
    p.add_argument(
        "--model", action="append", help="GPT-2 model to measure; repeatable (default: gpt2_en)"
    )
    p.add_argument(
        "--new-tokens", type=int, default=128, help="tokens generated per row (default: 128)"
    )
    p.add_argument("--runs", type=int, default=3, help="timed runs per figure (default: 3)")
    p.add_argument(
        "--version",
        type=int,
        default=None,
        help="the model version to measure (default: the newest in the repository)",
    )
    p.add_argument(
        "--threads", type=int, default=2, help="CPU threads for both TF and torch (default: 2)"
    )
    p.add_argument(
        "--char-lstm-dir",
        type=Path,
        default=None,
        help="model repository holding char_lstm_LANG/1 (default: --models-dir)",
    )
    p.add_argument("--skip-speed", action="store_true", help="only the bits-per-character part")
    p.add_argument("--skip-bpc", action="store_true", help="only the speed part")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    if not a.skip_speed:
        import torch

        torch.set_num_threads(a.threads)
    report: dict[str, dict[str, float]] = {}
    for name in a.model or ["gpt2_en"]:
        versions = [v for v in (a.models_dir / name).iterdir() if v.name.isdigit()]
        path = (
            max(versions, key=lambda v: int(v.name))
            if a.version is None
            else (a.models_dir / name / str(a.version))
        )
        row: dict[str, float] = {}
        if not a.skip_speed:
            row |= speed(path, a.new_tokens, a.runs)
        if not a.skip_bpc:
            lang = json.loads((path / "assets.extra" / "model_card.json").read_text())["language"]
            lstm_repo = a.char_lstm_dir or a.models_dir
            row |= bits_per_char(path, lstm_repo / f"char_lstm_{lang}" / "1")
        report[name] = row
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
