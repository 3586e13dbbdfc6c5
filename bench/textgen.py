"""Text generation speed and readability of the default char-LSTMs.

Speed: characters per second of the exported SavedModel (sampling loop in the
graph, LSTM state carried step to step) against the original Talkative Bot's
method on the same weights: for every new character, feed the whole prefix to
the Keras model again (`model.predict`) and sample the last position on the host.
Both generate the same number of characters from the same seed text in one run;
the ratio is what the target (50x or more) is about.

Readability: share of generated words found in the training corpus, at
temperature 0.5 after 300 characters (target: 80% or more).

    python bench/textgen.py [--model char_lstm_en] [--chars 700] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
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
from training.char_lstm.export import load_keras_from_export  # noqa: E402
from training.char_lstm.quality import (  # noqa: E402
    corpus_vocabulary,
    generate_batch,
    known_word_share,
)
from training.char_lstm.vocab import CharVocab  # noqa: E402

PROMPTS = {"en": "And it came to pass, when the king", "fr": "Et il arriva que le roi"}


def original_method(
    model: Any, vocab: CharVocab, prompt: str, chars: int, temperature: float, seed: int
) -> tuple[str, float]:
    """The 2017 loop: re-run the network over the whole growing prefix for each character."""
    rng = np.random.default_rng(seed)
    units = model.get_layer("lstm_0").units
    layers = sum(1 for layer in model.layers if layer.name.startswith("lstm_"))
    ids = list(vocab.encode(prompt))
    started = time.perf_counter()
    for _ in range(chars):
        x = np.asarray([ids], np.int32)
        zeros = [np.zeros((1, units), np.float32) for _ in range(2 * layers)]
        logits = model.predict([x, *zeros], verbose=0)[0][0, -1]
        p = np.exp((logits - logits.max()) / temperature)
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    elapsed = time.perf_counter() - started
    return vocab.decode(ids[len(prompt) :]), elapsed


def exported_method(
    loaded: object,
    vocab: CharVocab,
    prompt: str,
    chars: int,
    temperature: float,
    seed: int,
    batch: int = 1,
) -> tuple[str, float]:
    started = time.perf_counter()
    texts = generate_batch(
        loaded,
        vocab,
        [prompt] * batch,
        [seed + i for i in range(batch)],
        max_new_tokens=chars,
        temperature=temperature,
    )
    return texts[0], time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    p = bench_parser(main, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    repository_option(p, "model repository", flag="--models-dir")
    p.add_argument(
        "--model",
        action="append",
        help="model to measure; repeat for several (default: char_lstm_en, char_lstm_fr)",
    )
    p.add_argument(
        "--chars",
        type=int,
        default=700,
        help="characters generated per method, as the original bot did (default: 700)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=3,
        help="timed runs of the export; the median is reported (default: 3)",
    )
    p.add_argument(
        "--skip-baseline",
        action="store_true",
        help="skip the slow original method (no speed ratio then)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    import tensorflow as tf

    report: dict[str, dict[str, float]] = {}
    for name in a.model or ["char_lstm_en", "char_lstm_fr"]:
        path = a.models_dir / name / "1"
        card = json.loads((path / "assets.extra" / "model_card.json").read_text())
        vocab = CharVocab.load(path / "assets.extra" / "vocab.json")
        loaded = tf.saved_model.load(str(path))
        prompt = PROMPTS.get(card["language"], PROMPTS["en"])
        exported_method(loaded, vocab, prompt, 16, 0.7, 0)  # trace and warm up
        times = [
            exported_method(loaded, vocab, prompt, a.chars, 0.7, run)[1] for run in range(a.runs)
        ]
        export_cps = a.chars / statistics.median(times)
        _, t8 = exported_method(loaded, vocab, prompt, a.chars, 0.7, 0, batch=8)
        row = {"export_chars_per_s": export_cps, "export_batch8_chars_per_s": 8 * a.chars / t8}
        print(
            f"{name}: export, batch 1: {export_cps:,.0f} chars/s "
            f"({a.chars} chars, median of {a.runs}); batch 8: {8 * a.chars / t8:,.0f} chars/s"
        )
        if not a.skip_baseline:
            keras_model = load_keras_from_export(path)
            _, elapsed = original_method(keras_model, vocab, prompt, a.chars, 0.7, 0)
            base_cps = a.chars / elapsed
            row |= {"original_chars_per_s": base_cps, "speedup": export_cps / base_cps}
            print(
                f"{name}: original method (model.predict over the whole prefix per char): "
                f"{base_cps:,.1f} chars/s ({elapsed:.1f} s for {a.chars} chars)"
            )
            print(f"{name}: speed-up of the export: {export_cps / base_cps:,.0f}x (target >= 50x)")
        texts = generate_batch(
            loaded, vocab, [prompt] * 8, list(range(100, 108)), max_new_tokens=300, temperature=0.5
        )
        corpus = Path(card["training_corpus"]["name"])
        share = known_word_share(
            texts, corpus_vocabulary(ROOT / "data" / "corpora" / corpus / "train.txt")
        )
        row |= {"known_word_share": share.share}
        print(
            f"{name}: words found in the training corpus at T=0.5 after 300 chars: "
            f"{share.share:.1%} of {share.total} (target >= 80%); "
            f"invented: {', '.join(sorted(set(share.unknown))[:12]) or 'none'}"
        )
        print(
            f"{name}: held-out loss {card['held_out_loss']['nats_per_char']} nats/char "
            f"({card['held_out_loss']['bits_per_char']} bits/char)"
        )
        print(f"{name}: sample: {prompt}{texts[0][:200]!r}")
        report[name] = row
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
