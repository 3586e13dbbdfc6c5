"""A training run's resumable state on disk, the same for every trainer.

`RUN/checkpoints/` holds `last.weights.h5`, `last.npz` (optimizer moments, plus any
arrays the trainer adds, such as carried LSTM states) and `state.json` (the run's
identity, step, best held-out loss, history), written last and atomically: a crash
never leaves a state that points at half-written weights. A run directory only
resumes a run with the same identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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
