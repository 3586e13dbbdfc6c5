"""Train a GPT-2 from a fresh configuration on a corpus built by `python -m training.corpora`.

The tokenizer is a byte-level BPE learnt on the corpus's train.txt (or the original
GPT-2 vocabulary with --tokenizer gpt2). Documents are separated by the end token so
the model learns to stop. Each step reads `batch_size` windows of `context + 1`
tokens at offsets drawn from (seed, step), so a resumed run reads exactly what an
uninterrupted one would. AdamW with linear warm-up and cosine decay, global-norm
gradient clipping, mixed precision (bfloat16) when a GPU is present.

Held-out loss is measured on the whole of valid.txt with overlapping windows
(each token scored once, with at least `context - stride` tokens of history) and
reported per token and per character (nats and bits), the latter comparable with
the char-LSTM's. The best checkpoint on held-out loss is kept as best.weights.h5;
checkpoints hold the weights, optimizer moments and history, so a run resumes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkative_common.cli import command_parser
from training import run_state
from training.cli_common import config_options, print_json, trainer_options
from training.tf_threads import configure_threads


@dataclass(frozen=True)
class TrainConfig:
    corpus: Path
    run_dir: Path
    preset: str = "laptop"
    tokenizer: str = "bpe"  # "bpe" (trained on the corpus) or "gpt2" (original vocabulary)
    vocab_size: int = 4096
    context: int = 0  # 0 = the preset's n_positions
    dropout: float = 0.0
    batch_size: int = 16
    steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    clipnorm: float = 1.0
    eval_every: int = 100
    eval_stride: int = 0  # 0 = context // 2
    eval_tokens: int = 0  # periodic evaluations read the first N held-out tokens; 0 = all
    jit: bool = True  # XLA-compile the training step (about 1.6x faster on CPU)
    seed: int = 1234
    threads: int = 0
    mixed_precision: str = "auto"  # auto: bfloat16 on a GPU, float32 on a CPU
    # A continuation: start from that finished run's best weights and its tokenizer (the
    # shape must match); a new seed then reads other windows than that run did.
    init_from: Path | None = None
    stop_after: int | None = None  # not part of the run's identity: resume continues past it


IDENTITY_EXCLUDES = ("threads", "stop_after", "mixed_precision", "jit")


def split_documents(text: str, documents: int | None) -> list[str]:
    """The documents of a corpus file written by training.corpora (blank line between).

    Each document is "title\\n\\nbody" and bodies hold no blank line, so a file of n
    documents splits into 2n pieces; anything else is kept as one document rather
    than guessed at.
    """
    text = text.strip("\n")
    pieces = text.split("\n\n")
    if documents and len(pieces) == 2 * documents:
        return ["\n\n".join(pieces[i : i + 2]) for i in range(0, len(pieces), 2)]
    if documents and len(pieces) == documents:
        return pieces
    return [text]


def encode_documents(tokenizer: Any, docs: list[str], end: int) -> np.ndarray:
    """Token ids of the documents, each followed by the end token (int32)."""
    from training.gpt2.tokenizer import encode

    ids: list[int] = []
    for doc in docs:
        ids += encode(tokenizer, doc)
        ids.append(end)
    return np.asarray(ids, np.int32)


def batch_at(data: np.ndarray, step: int, batch: int, context: int, seed: int) -> np.ndarray:
    """[batch, context + 1] windows at offsets that depend only on (seed, step)."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(data) - context - 1, size=batch)
    return np.stack([data[s : s + context + 1] for s in starts])


def eval_windows(
    ids: np.ndarray, context: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, mask) [W, context]: every target scored exactly once.

    Windows start every `stride` tokens; a window scores only the targets the
    previous one did not, so each has at least context - stride tokens of history.
    """
    n = len(ids) - 1  # targets ids[1:]
    starts = list(range(0, max(1, n - context + stride), stride)) or [0]
    xs = np.zeros((len(starts), context), np.int32)
    ys = np.zeros_like(xs)
    mask = np.zeros(xs.shape, np.float32)
    scored = 0
    for w, s in enumerate(starts):
        length = min(context, n - s)
        if length <= 0:
            break
        xs[w, :length] = ids[s : s + length]
        ys[w, :length] = ids[s + 1 : s + 1 + length]
        first = max(scored - s, 0)
        mask[w, first:length] = 1.0
        scored = s + length
    return xs, ys, mask


def evaluate(
    model: Any, ids: np.ndarray, context: int, stride: int, batch: int = 16, jit: bool = False
) -> float:
    """Total nats of the held-out targets ids[1:] (divide by tokens or characters)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def nats(x: tf.Tensor, y: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
        logits = model(x, training=False)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        return tf.reduce_sum(loss * m)

    xs, ys, mask = eval_windows(ids, context, stride)
    total = 0.0
    for start in range(0, len(xs), batch):
        sl = slice(start, start + batch)
        total += float(nats(tf.constant(xs[sl]), tf.constant(ys[sl]), tf.constant(mask[sl])))
    return total


def heldout_ids(tokenizer: Any, valid_text: str, end: int) -> np.ndarray:
    """The held-out text exactly as the char-LSTM reads it, after one end token as context."""
    from training.gpt2.tokenizer import encode

    return np.asarray([end, *encode(tokenizer, valid_text)], np.int32)


def make_tokenizer(cfg: TrainConfig, train_text: str) -> Any:
    from training.gpt2.tokenizer import corpus_style_tokens, original_gpt2, train_bpe

    if cfg.tokenizer == "gpt2":
        return original_gpt2()
    lines = (train_text[i : i + 65536] for i in range(0, len(train_text), 65536))
    styles = corpus_style_tokens(train_text)
    return train_bpe(lines, cfg.vocab_size, show_progress=False, special_tokens=styles)


def heldout_parts(corpus: Path) -> dict[str, Path]:
    """A styled corpus's extra held-out files (valid_novel.txt, valid_kjv.txt...): each is
    scored on its own for the card's per-style and per-source figures."""
    return {p.stem.removeprefix("valid_"): p for p in sorted(corpus.glob("valid_*.txt"))}


def train(cfg: TrainConfig) -> dict[str, object]:
    configure_threads(cfg.threads)
    import keras
    import tensorflow as tf

    from training.gpt2.model import build_model, preset
    from training.gpt2.tokenizer import end_id, load

    if cfg.mixed_precision == "bfloat16" or (
        cfg.mixed_precision == "auto" and tf.config.list_physical_devices("GPU")
    ):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(cfg.seed)
    ckpt = cfg.run_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    identity = _jsonable(cfg)
    saved = run_state.read_state(ckpt, identity)
    resuming = saved is not None

    manifest = json.loads((cfg.corpus / "manifest.json").read_text(encoding="utf-8"))
    files = manifest.get("files", {})
    train_text = (cfg.corpus / "train.txt").read_text(encoding="utf-8")
    valid_text = (cfg.corpus / "valid.txt").read_text(encoding="utf-8")
    tok_path = cfg.run_dir / "tokenizer.json"
    if resuming and tok_path.exists():
        tokenizer = load(tok_path)  # the very tokenizer the checkpoint was trained with
    elif cfg.init_from is not None:
        tokenizer = load(cfg.init_from / "tokenizer.json")  # the weights' own vocabulary
        tokenizer.save(str(tok_path))
    else:
        tokenizer = make_tokenizer(cfg, train_text)
        tokenizer.save(str(tok_path))
    end = end_id(tokenizer)
    docs = split_documents(train_text, files.get("train.txt", {}).get("documents"))
    train_ids = encode_documents(tokenizer, docs, end)
    valid_ids = heldout_ids(tokenizer, valid_text, end)

    mcfg = preset(
        cfg.preset,
        tokenizer.get_vocab_size(),
        dropout=cfg.dropout,
        **({"n_positions": cfg.context} if cfg.context else {}),
    )
    context = mcfg.n_positions
    stride = cfg.eval_stride or context // 2
    if len(train_ids) <= context + 1:
        raise SystemExit(f"{cfg.corpus}/train.txt is too short for a context of {context} tokens")
    model = build_model(mcfg)
    if cfg.init_from is not None and not resuming:
        model.load_weights(cfg.init_from / "checkpoints" / "best.weights.h5")
    schedule = run_state.cosine_schedule(cfg)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=cfg.weight_decay,
        beta_2=0.95,
        global_clipnorm=cfg.clipnorm,
    )
    # Decay only matrices: not biases, layer norms or position embeddings.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "wpe"])
    optimizer.build(model.trainable_variables)

    def held_out() -> float:
        ids = valid_ids[: cfg.eval_tokens + 1] if cfg.eval_tokens else valid_ids
        return evaluate(model, ids, context, stride, jit=cfg.jit) / (len(ids) - 1)

    run = run_state.ResumableRun(
        cfg,
        model,
        optimizer,
        schedule,
        identity=identity,
        title=f"GPT-2 {cfg.corpus.name} ({mcfg.n_layer}x{mcfg.n_embd}, nats/token)",
        unit="token",
        held_out=held_out,
        describe=lambda loss: f"{loss:.4f} nats/token, perplexity {math.exp(loss):.1f}",
    )
    run.resume(saved)
    run.write_config(mcfg.to_dict())

    @tf.function(reduce_retracing=True, jit_compile=cfg.jit)
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    run.start(f"train gpt2 {cfg.corpus.name}")
    while run.step < run.last_step:
        window = batch_at(train_ids, run.step, cfg.batch_size, context, cfg.seed)
        run.trained(train_step(tf.constant(window[:, :-1]), tf.constant(window[:, 1:])))
    stopped = run.finish()
    if stopped is not None:
        return stopped

    # The figures of the model card: the best checkpoint on the whole held-out text.
    model.load_weights(ckpt / "best.weights.h5")
    total = evaluate(model, valid_ids, context, stride, jit=cfg.jit)
    tokens, chars = len(valid_ids) - 1, len(valid_text)
    result: dict[str, object] = {
        "corpus": str(cfg.corpus),
        "steps": run.step,
        "tokens_seen": run.step * cfg.batch_size * context,
        "train_tokens": len(train_ids),
        "valid_tokens": tokens,
        "valid_chars": chars,
        "best_valid_nats_per_token": total / tokens,
        "best_valid_perplexity": math.exp(total / tokens),
        "best_valid_nats_per_char": total / chars,
        "best_valid_bits_per_char": total / chars / math.log(2),
        "final_valid_nats_per_token": run.history["valid"][-1][1],
        "eval_stride": stride,
    }
    parts: dict[str, dict[str, float]] = {}
    for name, path in heldout_parts(cfg.corpus).items():
        text = path.read_text(encoding="utf-8")
        ids = heldout_ids(tokenizer, text, end)
        nats = evaluate(model, ids, context, stride, jit=cfg.jit)
        parts[name] = {
            "chars": len(text),
            "tokens": len(ids) - 1,
            "nats_per_char": nats / len(text),
            "nats_per_token": nats / (len(ids) - 1),
        }
    if parts:
        result["held_out_parts"] = parts
    return run.write_result(result)


def _jsonable(cfg: TrainConfig) -> dict[str, object]:
    """The run's identity: what must match to resume (not threads, not where to stop)."""
    identity = run_state.run_identity(cfg, IDENTITY_EXCLUDES)
    if identity["init_from"] is None:  # runs from before the option resume as they were
        del identity["init_from"]
    return identity


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    from training.gpt2.model import PRESETS

    p = command_parser(
        main,
        parents=[
            trainer_options(
                TrainConfig,
                {
                    "batch_size": "windows per step",
                    "lr": "peak learning rate (AdamW)",
                    "eval_every": "held-out loss, keeping the best, and a checkpoint every N steps",
                },
            )
        ],
    )
    config_options(
        p.add_argument_group("the model, its tokens and its evaluation"),
        TrainConfig,
        {
            "preset": "model size: tiny (tests), laptop (4x256, ctx 256), medium-laptop (6x384, "
            "ctx 512), small (GPT-2 124M, ctx 1024; a GPU host)",
            "tokenizer": "bpe: a byte-level BPE trained on train.txt; gpt2: the original GPT-2 "
            "vocabulary",
            "vocab_size": "tokens of the BPE",
            "context": "context (0: the preset's)",
            "weight_decay": "AdamW decoupled weight decay",
            "clipnorm": "clip the gradient norm",
            "eval_stride": "held-out windows start every N tokens (0 = context / 2)",
            "eval_tokens": "periodic evaluations (which pick the best checkpoint) read the first N "
            "held-out tokens; the final figures always use all of valid.txt (0 = all every time)",
            "jit": "do not XLA-compile the training and evaluation steps",
            "mixed_precision": "auto: bfloat16 compute when a GPU is present, float32 otherwise",
            "init_from": "continue training a finished run: start from its best weights and "
            "its tokenizer (same preset and context; use another --seed to read other windows)",
        },
        choices={
            "preset": sorted(PRESETS),
            "tokenizer": ("bpe", "gpt2"),
            "mixed_precision": ("auto", "bfloat16", "float32"),
        },
    )
    return TrainConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    """Train a GPT-2 from scratch on a corpus directory (train.txt, valid.txt, manifest.json).
    Writes RUN_DIR/tokenizer.json, checkpoints/ (resumable; best and last), config.json,
    loss_curve.png and result.json. Re-running the same command resumes."""
    print_json(train(parse_args(argv)))


if __name__ == "__main__":
    main()
