"""Train the captioner's decoder on an image+caption data set, and export the result.

The encoder is fixed (EfficientNet-Lite0 with ImageNet weights), so a run encodes
every image once, through the content-keyed feature cache (`features.py`), and then
trains only the decoder on (features, caption) pairs: each step draws a seeded
random batch of images and one caption of each. The data set is split by image
(`datasets.split_dataset`) and the vocabulary comes from the training captions
alone, so the held-out numbers are about images and words the model never saw.
BLEU-4 scores the top beam-search caption of each held-out image against all of
its captions, the way captioning papers report it.

RUN_DIR gets `decoder.weights.h5` (the best held-out step), `decoder_config.json`,
`vocab.json`, `loss_curve.png` and `metrics.json`; `--export-to` (or
`python -m training.captioner.export_run`) writes the SavedModel under the
`captioner` contract with a model card holding those metrics.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from talkative_common.cli import command_parser
from training.captioner.bleu import corpus_bleu
from training.captioner.datasets import (
    DATASET_KINDS,
    CaptionedImage,
    DatasetError,
    load_dataset,
    split_dataset,
)
from training.captioner.vocab import UNK_ID, WordVocab, detokenize, tokenize
from training.cli_common import config_options, print_json, trainer_options
from training.tf_threads import configure_threads

if TYPE_CHECKING:
    import keras

DEFAULT_ENCODER_WEIGHTS = Path("runs/encoder/efficientnet_lite0.weights.h5")
DEFAULT_FEATURE_CACHE = Path("runs/captioner/feature_cache.npz")
METRICS = "metrics.json"
DECODER_WEIGHTS = "decoder.weights.h5"
DECODER_CONFIG = "decoder_config.json"
VOCAB = "vocab.json"
LOSS_CURVE = "loss_curve.png"
EXAMPLES = 5  # held-out captions shown in metrics.json


@dataclass(frozen=True)
class TrainConfig:
    data: Path  # COCO JSON, Flickr caption file or a folder
    run_dir: Path
    kind: str = "auto"
    images_dir: Path | None = None
    missing_images: str = "skip"
    encoder_weights: Path = DEFAULT_ENCODER_WEIGHTS
    feature_cache: Path | None = DEFAULT_FEATURE_CACHE
    features: str = "pooled"
    encode_batch_size: int = 32
    min_count: int = 5
    max_vocab: int | None = 10_000
    max_len: int = 20
    embed_dim: int = 256
    units: int = 512
    dropout: float = 0.3
    steps: int = 5000
    batch_size: int = 64
    lr: float = 2e-3
    clip_norm: float = 5.0
    seed: int = 0
    eval_every: int = 250
    held_out: float = 0.1
    beam_size: int = 3
    length_alpha: float = 0.0
    train_bleu_images: int = 500
    threads: int = 0
    export_to: Path | None = None
    name: str = "captioner"
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}


def ensure_encoder(weights: Path) -> keras.Model:
    """The encoder with `weights`, converted from the offline ImageNet weights if missing.

    It takes any image size and returns its feature map too: the scene features read
    the photo at two sizes (the others see only the 224 x 224 crop, as before)."""
    from training.captioner import encoder

    if not weights.exists():
        print(f"converting the offline EfficientNet-Lite0 ImageNet weights to {weights}")
        encoder.convert(weights)
    return encoder.load_encoder(weights, None, feature_map=True)


def top_captions(
    decoder: keras.Model,
    features: np.ndarray,
    vocab: WordVocab,
    *,
    beam_size: int,
    max_len: int,
    length_alpha: float = 0.0,
    batch_size: int = 64,
) -> list[list[str]]:
    """The best beam-search caption of each row of `features`, as words."""
    import tensorflow as tf

    from training.captioner.decoder import decode

    @tf.function(input_signature=[tf.TensorSpec([None, features.shape[1]], tf.float32)])
    def best(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        result = decode(
            decoder, rows, beam_size=beam_size, max_len=max_len, length_alpha=length_alpha
        )
        return result.tokens[:, 0], result.lengths[:, 0]

    out: list[list[str]] = []
    for start in range(0, len(features), batch_size):
        tokens, lengths = best(tf.constant(features[start : start + batch_size]))
        for row, length in zip(tokens.numpy(), lengths.numpy(), strict=True):
            out.append([vocab.words[i] for i in row[:length]])
    return out


def score(
    decoder: keras.Model,
    features: np.ndarray,
    items: Sequence[CaptionedImage],
    vocab: WordVocab,
    cfg: TrainConfig,
) -> tuple[dict[str, Any], list[list[str]]]:
    """Corpus BLEU-4 of the top caption of each image against all of its captions."""
    hypotheses = top_captions(
        decoder,
        features,
        vocab,
        beam_size=cfg.beam_size,
        max_len=cfg.max_len,
        length_alpha=cfg.length_alpha,
    )
    references = [[tokenize(c) for c in item.captions] for item in items]
    return corpus_bleu(hypotheses, references).to_dict(), hypotheses


def _pairs(
    items: Sequence[CaptionedImage], features: np.ndarray, vocab: WordVocab, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (image, caption) pair: features repeated per caption, padded token ids."""
    from training.captioner.decoder import pad_batch

    rows = [i for i, item in enumerate(items) for _ in item.captions]
    tokens = [vocab.encode(c, max_len) for item in items for c in item.captions]
    return features[rows], pad_batch(tokens)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline; returns what it writes to RUN_DIR/metrics.json."""
    configure_threads(cfg.threads)
    import keras

    from training.captioner.decoder import FEATURE_KINDS, DecoderConfig, build_decoder, pad_batch
    from training.captioner.features import encoder_fingerprint, image_features
    from training.captioner.fit import fit
    from training.plots import plot_loss_curve

    run = cfg.run_dir
    if (run / METRICS).exists():
        raise FileExistsError(f"{run} holds a finished run; use a new --run-dir")
    if cfg.export_to is not None and (cfg.export_to / "saved_model.pb").exists():
        raise FileExistsError(f"{cfg.export_to} already holds a model; versions are never reused")
    if cfg.features not in FEATURE_KINDS:
        raise ValueError(f"features must be one of {', '.join(FEATURE_KINDS)}")
    if cfg.missing_images not in ("skip", "error"):
        raise ValueError("missing_images must be 'skip' or 'error'")
    started = time.time()

    dataset = load_dataset(
        cfg.kind,
        cfg.data,
        cfg.images_dir,
        missing="error" if cfg.missing_images == "error" else "skip",
    )
    train_items, held_items = split_dataset(dataset.items, held_out=cfg.held_out, seed=cfg.seed)
    print(
        f"{dataset.kind} data set {dataset.source}: {len(dataset.items)} images, "
        f"{dataset.caption_count} captions; {len(train_items)} images to train on, "
        f"{len(held_items)} held out"
    )

    encoder = ensure_encoder(cfg.encoder_weights)
    position = {item.name: i for i, item in enumerate(dataset.items)}
    all_features, stats = image_features(
        [item.path for item in dataset.items],
        encoder,
        kind=cfg.features,
        cache_path=cfg.feature_cache,
        batch_size=cfg.encode_batch_size,
    )
    print(
        f"features: {stats.computed} images encoded, {stats.cached} from the cache "
        f"({cfg.feature_cache})"
    )
    train_features = all_features[[position[item.name] for item in train_items]]
    held_features = all_features[[position[item.name] for item in held_items]]

    vocab = WordVocab.build(
        (c for item in train_items for c in item.captions),
        min_count=cfg.min_count,
        max_size=cfg.max_vocab,
    )
    if len(vocab) <= 4:
        raise DatasetError(
            f"no word of the training captions is seen {cfg.min_count} times; lower --min-count"
        )
    run.mkdir(parents=True, exist_ok=True)
    vocab.save(run / VOCAB)
    dcfg = DecoderConfig(
        vocab_size=len(vocab),
        feature_dim=FEATURE_KINDS[cfg.features],
        features=cfg.features,
        embed_dim=cfg.embed_dim,
        units=cfg.units,
        dropout=cfg.dropout,
    )
    (run / DECODER_CONFIG).write_text(json.dumps(dcfg.to_dict(), indent=2) + "\n")

    keras.utils.set_random_seed(cfg.seed)
    decoder = build_decoder(dcfg)
    train_tokens = [[vocab.encode(c, cfg.max_len) for c in item.captions] for item in train_items]

    def batches(step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([cfg.seed, step])
        images = rng.integers(0, len(train_items), size=cfg.batch_size)
        chosen = [train_tokens[i][rng.integers(len(train_tokens[i]))] for i in images]
        return train_features[images], pad_batch(chosen)

    valid = _pairs(held_items, held_features, vocab, cfg.max_len) if held_items else None
    history = fit(
        decoder,
        batches,
        steps=cfg.steps,
        lr=cfg.lr,
        clip_norm=cfg.clip_norm,
        valid=valid,
        eval_every=cfg.eval_every,
        desc=f"train captioner ({dataset.kind})",
    )
    decoder.save_weights(run / DECODER_WEIGHTS)
    plot_loss_curve(
        run / LOSS_CURVE,
        history.train,
        history.valid,
        title=f"captioner decoder on {dataset.source.name} ({dcfg.units} LSTM units)",
        ylabel="loss (nats per word)",
    )

    held_bleu: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = []
    if held_items:
        held_bleu, hypotheses = score(decoder, held_features, held_items, vocab, cfg)
        examples = [
            {"image": item.name, "caption": detokenize(words), "references": list(item.captions)}
            for item, words in list(zip(held_items, hypotheses, strict=True))[:EXAMPLES]
        ]
    rng = np.random.default_rng([cfg.seed, 1])
    sample = min(cfg.train_bleu_images, len(train_items))
    picked = np.sort(rng.choice(len(train_items), size=sample, replace=False))
    train_bleu: dict[str, Any] | None = None
    if sample:
        train_bleu, _ = score(
            decoder, train_features[picked], [train_items[i] for i in picked], vocab, cfg
        )
        train_bleu["images"] = sample

    held_words = [vocab.encode(c, cfg.max_len)[1:-1] for item in held_items for c in item.captions]
    unknown = sum(ids.count(UNK_ID) for ids in held_words)
    window = max(1, min(20, cfg.steps // 10))
    losses = [loss for _, loss in history.train]
    metrics: dict[str, Any] = {
        "held_out_loss": history.best_valid,  # nats per word, at the step kept
        "bleu4": None if held_bleu is None else held_bleu["bleu"],
        "bleu4_detail": held_bleu,
        "bleu4_train": None if train_bleu is None else train_bleu["bleu"],
        "bleu4_train_detail": train_bleu,
        "examples": examples,
        "dataset": dataset.summary(),
        "split": {
            "seed": cfg.seed,
            "held_out_fraction": cfg.held_out,
            "train_images": len(train_items),
            "train_captions": sum(len(item.captions) for item in train_items),
            "held_out_images": len(held_items),
            "held_out_captions": sum(len(item.captions) for item in held_items),
        },
        "vocab": {
            "size": len(vocab),
            "min_count": cfg.min_count,
            "max_size": cfg.max_vocab,
            "held_out_unknown_rate": unknown / max(1, sum(len(w) for w in held_words)),
        },
        "features": {
            "kind": cfg.features,
            "cache": None if cfg.feature_cache is None else str(cfg.feature_cache),
            "encoder_fingerprint": encoder_fingerprint(encoder),
            **stats.to_dict(),
        },
        "decoder": dcfg.to_dict(),
        "training": {
            "steps": cfg.steps,
            "train_loss_first": _mean(losses[:window]),
            "train_loss_last": _mean(losses[-window:]),
            "held_out_losses": history.valid,
            "seconds": round(time.time() - started, 1),
        },
        "seed": cfg.seed,
        "config": cfg.to_dict(),
    }
    (run / METRICS).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    print(
        f"BLEU-4 held-out {_fmt(metrics['bleu4'])}, train {_fmt(metrics['bleu4_train'])}; "
        f"wrote {run}"
    )
    if cfg.export_to is not None:
        export_run(run, cfg.export_to, name=cfg.name, language=cfg.language)
        print(
            f"exported to {cfg.export_to}; add TF Serving's warm-up requests with "
            f"python -m training.serving_warmup {cfg.export_to}"
        )
    return metrics


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    name: str = "captioner",
    language: str = "en",
    encoder_weights: Path | None = None,
    beam_size: int | None = None,
    max_len: int | None = None,
    length_alpha: float | None = None,
) -> dict[str, Any]:
    """Write a finished run as a `captioner` SavedModel version; returns its model card.

    Beam width, maximum length and length normalisation default to the run's.
    """
    from training.captioner.decoder import DecoderConfig, build_decoder
    from training.captioner.export import Captioner, export_captioner

    metrics_path = run_dir / METRICS
    if not metrics_path.exists():
        raise FileNotFoundError(f"{run_dir}: no {METRICS}; is it a finished training run?")
    if (out_dir / "saved_model.pb").exists():
        raise FileExistsError(f"{out_dir} already holds a model; versions are never overwritten")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    config = metrics["config"]
    dcfg = DecoderConfig.from_dict(json.loads((run_dir / DECODER_CONFIG).read_text()))
    decoder = build_decoder(dcfg)
    decoder.load_weights(run_dir / DECODER_WEIGHTS)
    vocab = WordVocab.load(run_dir / VOCAB)
    encoder = ensure_encoder(encoder_weights or Path(config["encoder_weights"]))
    captioner = Captioner(
        encoder,
        decoder,
        vocab,
        beam_size=beam_size or config["beam_size"],
        max_len=max_len or config["max_len"],
        length_alpha=config["length_alpha"] if length_alpha is None else length_alpha,
        features=dcfg.features,
    )
    data = metrics["dataset"]
    card = {
        "name": name,
        "language": language,
        "description": f"Show and Tell decoder ({dcfg.units} LSTM units) on EfficientNet-Lite0 "
        f"{dcfg.features} features, trained on {metrics['split']['train_images']} images of "
        f"{Path(data['source']).name}.",
        "architecture": {"encoder": "efficientnet_lite0", "decoder": dcfg.to_dict()},
        "training_corpus": {
            "name": Path(data["source"]).name,
            "kind": data["kind"],
            "images": data["images"],
            "captions": data["captions"],
            "split": metrics["split"],
        },
        "training": {k: config[k] for k in ("steps", "batch_size", "lr", "seed", "max_len")},
        "metrics": {
            "held_out_loss_nats_per_word": metrics["held_out_loss"],
            "bleu4_held_out": metrics["bleu4"],
            "bleu4_train": metrics["bleu4_train"],
        },
        "date": datetime.now(UTC).date().isoformat(),
    }
    export_captioner(captioner, vocab, out_dir, card)
    full: dict[str, Any] = json.loads(
        (out_dir / "assets.extra" / "model_card.json").read_text(encoding="utf-8")
    )
    return full


CAPTIONER_OPTIONS = {
    "data": "the data set: a COCO captions .json, a Flickr token/results.csv/captions.txt "
    "file, or a folder of images with <stem>.txt sidecars or a captions.tsv",
    "kind": "format of --data; auto: folder for a directory, coco for .json, else flickr",
    "images_dir": "where the images named by a COCO or Flickr file are (default: beside the "
    "file, or the sub-directory of it that holds them)",
    "missing_images": "what to do with images the annotations name but the images directory lacks",
    "encoder_weights": "Keras EfficientNet-Lite0 weights; converted from the offline ImageNet "
    "weights when the file is missing",
    "feature_cache": "the .npz of encoder features keyed by image content, shared by runs",
    "features": "what the decoder reads: the pooled 1280-d image features, the 1000 ImageNet "
    "class probabilities, or the scene (class probabilities of the photo and of a second "
    "subject, people and cat faces from OpenCV's cascades, the place; training/captioner/"
    "scene.py)",
    "encode_batch_size": "images per encoder batch when computing features",
    "min_count": "keep words seen at least this often in the training captions (others are "
    "<unk>); lower it for small data sets",
    "max_vocab": "largest vocabulary, special tokens included (0: no limit)",
    "max_len": "words of a caption trained on (longer ones are cut) and generated at most",
    "embed_dim": "word embedding size",
    "units": "LSTM units of the decoder",
    "clip_norm": "clip the global gradient norm",
    "held_out": "fraction of the images held out for loss and BLEU-4 (0: none)",
    "beam_size": "beam width for the BLEU-4 captions and the exported model",
    "length_alpha": "beam-search length normalisation (0: plain log-probability)",
    "train_bleu_images": "training images (a seeded sample) also scored with BLEU-4, to compare "
    "with held-out",
    "export_to": "after training, export the captioner here, e.g. serving/models/captioner/2",
    "name": "model name for the exported model card (with --export-to)",
    "language": "ISO 639-1 language of the captions, for the model card (with --export-to)",
}


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = command_parser(
        main,
        parents=[
            trainer_options(
                TrainConfig,
                {
                    "run_dir": "new directory for the run's outputs",
                    "dropout": "dropout on the image features and the LSTM outputs (0 disables)",
                    "batch_size": "image+caption pairs per step: one caption of each image drawn",
                    "lr": "peak learning rate (Adam, cosine decay)",
                    "seed": "random seed: the split, the weights and the batches",
                    "eval_every": "held-out loss every N steps (the best step's weights are kept)",
                },
            )
        ],
    )
    config_options(
        p.add_argument_group("the data set, the decoder and its evaluation"),
        TrainConfig,
        CAPTIONER_OPTIONS,
        choices={
            "kind": DATASET_KINDS,
            "missing_images": ("skip", "error"),
            "features": ("pooled", "class_probs", "scene"),
        },
        metavars={"export_to": "DIR"},
    )
    values = vars(p.parse_args(argv))
    values["max_vocab"] = values["max_vocab"] or None
    return TrainConfig(**values)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings about the data set as one plain line, not as a source location."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Train the captioner's decoder on an image+caption data set (COCO captions JSON, a
    Flickr8k/Flickr30k caption file, or a folder of images with captions). Image features are cached
    by content, the vocabulary comes from the training split, and RUN_DIR gets decoder.weights.h5,
    decoder_config.json, vocab.json, loss_curve.png and metrics.json (held-out loss and BLEU-4).
    Missing images are skipped with a warning."""
    cfg = parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            metrics = train(cfg)
    except (DatasetError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("held_out_loss", "bleu4", "bleu4_train", "examples")}
    print_json(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
