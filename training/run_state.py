"""A training run's resumable state on disk, the same for every trainer.

`RUN/checkpoints/` holds `last.weights.h5`, `last.npz` (optimizer moments, plus any
arrays the trainer adds, such as carried LSTM states) and `state.json` (the run's
identity, step, best held-out loss, history), written last and atomically: a crash
never leaves a state that points at half-written weights. A run directory only
resumes a run with the same identity.

`ResumableRun` is the step loop's bookkeeping that the char-LSTM and GPT-2 trainers
share on top of it: the step, the best held-out loss and the history, evaluating and
checkpointing every `eval_every` steps, stopping at `--stop-after`, and the run folder's
config.json and result.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.plots import plot_loss_curve

History = dict[str, list[list[float]]]


def run_identity(cfg: object, excludes: Iterable[str]) -> dict[str, object]:
    """The settings that must match to resume (paths as strings), without `excludes`."""
    skip = set(excludes)
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items() if k not in skip}


def read_state(ckpt: Path, identity: Mapping[str, object]) -> dict[str, Any] | None:
    """The saved state of the run in `ckpt`, None for a new run; another run's is refused."""
    path = ckpt / "state.json"
    if not path.exists():
        return None
    saved: dict[str, Any] = json.loads(path.read_text())
    if saved["config"] != identity:
        raise SystemExit(
            f"{ckpt.parent} holds a run with another configuration; use a new --run-dir "
            "or delete it to start over"
        )
    return saved


def restore(ckpt: Path, model: Any, optimizer: Any) -> Any:
    """Load the last weights and optimizer moments; returns `last.npz` for extra arrays."""
    model.load_weights(ckpt / "last.weights.h5")
    arrays = np.load(ckpt / "last.npz")
    for i, var in enumerate(optimizer.variables):
        var.assign(arrays[f"opt{i}"])
    return arrays


def save(
    ckpt: Path,
    model: Any,
    optimizer: Any,
    *,
    identity: Mapping[str, object],
    step: int,
    best: float,
    history: History,
    title: str,
    extra: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write weights, optimizer moments and `extra`, then the state; redraw the loss curve."""
    model.save_weights(ckpt / "last.weights.h5")
    arrays = {f"opt{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
    arrays |= dict(extra or {})
    np.savez(ckpt / "last.npz", **arrays)
    state_path = ckpt / "state.json"
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"config": dict(identity), "step": step, "best": best, "history": history})
    )
    tmp.replace(state_path)  # atomic: a crash never leaves a half-written state
    plot_loss_curve(
        ckpt.parent / "loss_curve.png",
        [(int(p[0]), p[1]) for p in history["train"]],
        [(int(p[0]), p[1]) for p in history["valid"]],
        title=title,
    )


def cosine_schedule(cfg: Any) -> Any:
    """Linear warm-up to `cfg.lr` over `cfg.warmup_steps`, then cosine decay to
    `cfg.min_lr_ratio` of it at `cfg.steps`."""
    import keras

    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        decay_steps=max(1, cfg.steps - cfg.warmup_steps),
        alpha=cfg.min_lr_ratio,
    )


class ResumableRun:
    """One training session of a resumable run in `cfg.run_dir`.

    The trainer calls `resume` with the saved state (if any), `start` before its loop,
    `trained` after each step (it evaluates with `held_out` and checkpoints on schedule, and
    says when to stop) and `finish` after the loop. `extra` gives the arrays saved with each
    checkpoint beside the weights (the char-LSTM's carried states).
    """

    def __init__(
        self,
        cfg: Any,
        model: Any,
        optimizer: Any,
        schedule: Any,
        *,
        identity: Mapping[str, object],
        title: str,
        unit: str,
        held_out: Callable[[], float],
        describe: Callable[[float], str],
        extra: Callable[[], Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        self.cfg, self.model, self.optimizer, self.schedule = cfg, model, optimizer, schedule
        self.identity, self.title, self.unit = identity, title, unit
        self.held_out, self.describe, self.extra = held_out, describe, extra
        self.ckpt: Path = cfg.run_dir / "checkpoints"
        self.step, self.best = 0, float("inf")
        self.history: History = {"train": [], "valid": []}
        self.last_step = min(cfg.steps, cfg.stop_after or cfg.steps)
        self.started = time.time()
        self.bar: Any = None

    def resume(self, saved: Mapping[str, Any] | None) -> Any:
        """Continue from `saved` (`read_state`'s answer); returns `last.npz`, or None."""
        if saved is None:
            return None
        arrays = restore(self.ckpt, self.model, self.optimizer)
        self.step, self.best, self.history = saved["step"], saved["best"], saved["history"]
        print(
            f"resuming {self.cfg.run_dir} at step {self.step} "
            f"(best held-out {self.best:.4f} nats/{self.unit})"
        )
        return arrays

    def write_config(self, model: Mapping[str, object]) -> None:
        """RUN/config.json: the run's identity and its model's configuration."""
        (self.cfg.run_dir / "config.json").write_text(
            json.dumps({**self.identity, "model": dict(model)}, indent=2) + "\n"
        )

    def start(self, desc: str) -> None:
        from tqdm import tqdm

        self.started = time.time()
        self.bar = tqdm(total=self.cfg.steps, initial=self.step, desc=desc, unit="step")

    def trained(self, loss: float) -> bool:
        """Count a step of training `loss`; evaluate and checkpoint when due. True: stop."""
        self.step += 1
        self.history["train"].append([self.step, float(loss)])
        self.bar.update(1)
        lr = float(self.schedule(self.step))
        self.bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{lr:.1e}")
        if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
            self.evaluate()
            self.checkpoint()
        elif self.step == self.last_step:
            self.checkpoint()
        return self.step >= self.last_step

    def finish(self) -> dict[str, object] | None:
        """After the loop: the early-stop result, or None once a last evaluation (and
        checkpoint) stands at the final step."""
        self.bar.close()
        if self.step < self.cfg.steps:
            print(
                f"stopped at step {self.step} of {self.cfg.steps}; run the same command to resume"
            )
            return {"steps": self.step, "stopped_early": True}
        if not self.history["valid"] or self.history["valid"][-1][0] != self.step:
            self.evaluate()
            self.checkpoint()
        return None

    def evaluate(self) -> None:
        """Held-out loss now; the best step's weights are kept as best.weights.h5."""
        from tqdm import tqdm

        loss = self.held_out()
        self.history["valid"].append([self.step, loss])
        if loss < self.best:
            self.best = loss
            self.model.save_weights(self.ckpt / "best.weights.h5")
        tqdm.write(f"step {self.step}: held-out {self.describe(loss)} (best {self.best:.4f})")

    def checkpoint(self) -> None:
        save(
            self.ckpt,
            self.model,
            self.optimizer,
            identity=self.identity,
            step=self.step,
            best=self.best,
            history=self.history,
            title=self.title,
            extra=self.extra() if self.extra else None,
        )

    def write_result(self, result: Mapping[str, object]) -> dict[str, object]:
        """RUN/result.json: what the finished run measured, with the model's parameter count
        and this session's training time; returns it."""
        full = {
            **result,
            "params": int(self.model.count_params()),
            "train_seconds_this_session": round(time.time() - self.started, 1),
        }
        (self.cfg.run_dir / "result.json").write_text(
            json.dumps(full, indent=2, ensure_ascii=False) + "\n"
        )
        return full
