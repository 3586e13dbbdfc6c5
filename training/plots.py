"""Loss-curve PNGs written by every long training job."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training hosts
import matplotlib.pyplot as plt


def _smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    out, last = [], values[0] if values else 0.0
    for v in values:
        last = weight * last + (1 - weight) * v
        out.append(last)
    return out


def plot_loss_curve(
    path: Path,
    train: Sequence[tuple[int, float]],
    valid: Sequence[tuple[int, float]],
    *,
    title: str,
    ylabel: str = "loss (nats per character)",
) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, color="#9ecae1", linewidth=0.8, label="train (per step)")
        ax.plot(steps, _smooth(losses), color="#3182bd", linewidth=1.5, label="train (smoothed)")
    if valid:
        steps, losses = zip(*valid, strict=True)
        ax.plot(steps, losses, "o-", color="#e6550d", label="held-out")
        best = min(valid, key=lambda p: p[1])
        ax.annotate(f"best {best[1]:.3f}", best, textcoords="offset points", xytext=(5, 8))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
