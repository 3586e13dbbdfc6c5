"""Train a char-LSTM on a corpus built by `python -m training.corpora`.

Truncated back-propagation through time: the training text is cut into
`batch_size` contiguous streams and each step reads the next `seq_len` characters
of every stream, carrying the LSTM state across steps, which is how the model will
be used when generating. Held-out loss is measured the same way over whole
validation books, in nats per character. Checkpoints hold the weights, optimizer
moments, carried state and history, so an interrupted run resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkative_common.cli import command_parser
from training import run_state
from training.cli_common import config_options, print_json, trainer_options
from training.tf_threads import configure_threads


@dataclass(frozen=True)
class TrainConfig:
    corpus: Path
    run_dir: Path
    units: int = 256
    layers: int = 2
    embed_dim: int = 64
    dropout: float = 0.0
    batch_size: int = 64
    seq_len: int = 128
    steps: int = 1000
    lr: float = 3e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 50
    clipnorm: float = 5.0
    eval_every: int = 200
    eval_streams: int = 16
    seed: int = 1234
    threads: int = 0
    stop_after: int | None = None  # not part of the run's identity: resume continues past it


def stream_windows(data: np.ndarray, batch: int, seq_len: int, offset: int) -> np.ndarray:
    """[steps, batch, seq_len + 1]: consecutive windows of `batch` contiguous streams."""
    stream_len = (len(data) - offset) // batch
    steps = (stream_len - 1) // seq_len
    streams = data[offset : offset + batch * stream_len].reshape(batch, stream_len)
    idx = np.arange(steps)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return streams[:, idx].transpose(1, 0, 2)


def epoch_at(step: int, n_chars: int, batch: int, seq_len: int, seed: int) -> tuple[int, int]:
    """(first step, text offset) of the epoch that contains `step`.

    Each epoch starts the streams at a random offset drawn from (seed, first step),
    so consecutive epochs cut the text at different places; resuming mid-epoch
    recomputes the same plan.
    """
    start = 0
    while True:
        offset = int(np.random.default_rng([seed, start]).integers(0, seq_len))
        steps = ((n_chars - offset) // batch - 1) // seq_len
        if step < start + steps:
            return start, offset
        start += steps


def evaluate(
    model: object, data: np.ndarray, streams: int, units: int, layers: int, chunk: int = 256
) -> float:
    """Mean nats per character over `data`, read as `streams` parallel pieces carrying state."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor, states: list[tf.Tensor]) -> tuple:
        logits, *new_states = model([x, *states], training=False)  # type: ignore[operator]
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        return loss, new_states

    length = len(data) // streams
    pieces = data[: streams * length].reshape(streams, length)
    states = [tf.zeros((streams, units)) for _ in range(2 * layers)]
    total, count = 0.0, 0
    for start in range(0, length - 1, chunk):
        x = pieces[:, start : min(start + chunk, length - 1)]
        y = pieces[:, start + 1 : start + 1 + x.shape[1]]
        loss, states = step(tf.constant(x), tf.constant(y), states)
        total += float(loss)
        count += y.size
    return total / count


def train(cfg: TrainConfig) -> dict[str, object]:
    configure_threads(cfg.threads)
    import keras
    import tensorflow as tf

    from training.char_lstm.model import CharLSTMConfig, build_model
    from training.char_lstm.vocab import CharVocab

    keras.utils.set_random_seed(cfg.seed)
    ckpt = cfg.run_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)

    train_text = (cfg.corpus / "train.txt").read_text(encoding="utf-8")
    valid_text = (cfg.corpus / "valid.txt").read_text(encoding="utf-8")
    vocab = CharVocab.from_text(train_text)
    known = set(vocab.chars)
    unseen = sorted({c for c in valid_text if c not in known})
    valid_text = "".join(c for c in valid_text if c in known)
    vocab.save(cfg.run_dir / "vocab.json")
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    # A corpus too small for one batch would make the epoch plan empty (and loop forever).
    need = cfg.batch_size * (cfg.seq_len + 1) + cfg.seq_len
    if len(train_ids) < need:
        raise ValueError(
            f"{cfg.corpus}/train.txt has {len(train_ids):,} characters; batch size "
            f"{cfg.batch_size} x sequence length {cfg.seq_len} needs at least {need:,}"
        )
    if len(valid_ids) < 2 * cfg.eval_streams:
        raise ValueError(
            f"{cfg.corpus}/valid.txt has {len(valid_ids):,} usable characters; "
            f"{cfg.eval_streams} evaluation streams need at least {2 * cfg.eval_streams}"
        )

    mcfg = CharLSTMConfig(len(vocab), cfg.embed_dim, cfg.units, cfg.layers, cfg.dropout)
    model = build_model(mcfg)
    schedule = run_state.cosine_schedule(cfg)
    optimizer = keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=cfg.clipnorm)
    optimizer.build(model.trainable_variables)

    carried = [np.zeros((cfg.batch_size, cfg.units), np.float32) for _ in range(2 * cfg.layers)]
    identity = _jsonable(cfg)
    run = run_state.ResumableRun(
        cfg,
        model,
        optimizer,
        schedule,
        identity=identity,
        title=f"char-LSTM {cfg.corpus.name} ({cfg.layers}x{cfg.units})",
        unit="char",
        held_out=lambda: evaluate(model, valid_ids, cfg.eval_streams, cfg.units, cfg.layers),
        describe=lambda loss: f"{loss:.4f} nats/char",
        extra=lambda: {f"state{i}": s for i, s in enumerate(carried)},
    )
    arrays = run.resume(run_state.read_state(ckpt, identity))
    if arrays is not None:
        carried = [arrays[f"state{i}"] for i in range(2 * cfg.layers)]
    run.write_config(mcfg.to_dict())

    @tf.function(reduce_retracing=True)
    def train_step(x: tf.Tensor, y: tf.Tensor, states: list[tf.Tensor]) -> tuple:
        with tf.GradientTape() as tape:
            logits, *new_states = model([x, *states], training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss, new_states

    run.start(f"train {cfg.corpus.name}")
    while run.step < run.last_step:
        start, offset = epoch_at(run.step, len(train_ids), cfg.batch_size, cfg.seq_len, cfg.seed)
        epoch = stream_windows(train_ids, cfg.batch_size, cfg.seq_len, offset)
        if run.step == start:
            carried = [np.zeros_like(s) for s in carried]
        for window in epoch[run.step - start :]:
            loss, new_states = train_step(
                tf.constant(window[:, :-1]),
                tf.constant(window[:, 1:]),
                [tf.constant(s) for s in carried],
            )
            carried = [s.numpy() for s in new_states]
            if run.trained(loss):
                break
    stopped = run.finish()
    if stopped is not None:
        return stopped
    result: dict[str, object] = {
        "corpus": str(cfg.corpus),
        "steps": run.step,
        "chars_seen": run.step * cfg.batch_size * cfg.seq_len,
        "best_valid_nats_per_char": run.best,
        "final_valid_nats_per_char": run.history["valid"][-1][1],
        "unseen_valid_chars_dropped": unseen,
    }
    return run.write_result(result)


def _jsonable(cfg: TrainConfig) -> dict[str, object]:
    """The run's identity: what must match to resume (not threads, not where to stop)."""
    return run_state.run_identity(cfg, ("threads", "stop_after"))


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = command_parser(
        main,
        parents=[
            trainer_options(
                TrainConfig,
                {
                    "batch_size": "parallel contiguous streams of text per step",
                    "lr": "peak learning rate (Adam)",
                    "dropout": "dropout after each LSTM layer (0 disables)",
                },
            )
        ],
    )
    config_options(
        p.add_argument_group("the model and its data"),
        TrainConfig,
        {
            "units": "LSTM units per layer",
            "layers": "stacked LSTM layers",
            "embed_dim": "character embedding size",
            "seq_len": "characters per stream per step (back-propagation length)",
            "clipnorm": "clip the global gradient norm to this",
            "eval_streams": "parallel pieces the held-out text is read in",
        },
    )
    return TrainConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    """Train a character-level LSTM on a corpus directory (train.txt, valid.txt). Writes
    RUN_DIR/checkpoints (resumable), vocab.json, config.json, loss_curve.png and result.json.
    Re-running the same command resumes an interrupted run."""
    print_json(train(parse_args(argv)))


if __name__ == "__main__":
    main()
