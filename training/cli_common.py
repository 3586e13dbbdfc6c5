"""What the training and export command lines share: one argparse parent for the trainers'
common options, the export CLIs' common options, and how they print their result.

A trainer's own options stay in its module; the ones every trainer has (where the run goes,
how long and how fast it learns, its seed, its threads) are declared once here, typed and
defaulted from the trainer's config dataclass, so `--help` gives each trainer's defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Config field -> the help every trainer shows (a trainer may say more through `helps`).
TRAINER_OPTIONS = {
    "corpus": "corpus directory built by python -m training.corpora",
    "run_dir": "where checkpoints, curves and results go",
    "steps": "total optimisation steps",
    "batch_size": "examples per optimisation step",
    "lr": "peak learning rate",
    "min_lr_ratio": "final learning rate as a fraction of the peak (cosine decay)",
    "warmup_steps": "linear warm-up steps before the cosine decay",
    "dropout": "dropout rate (0 disables)",
    "eval_every": "measure held-out loss and checkpoint every N steps",
    "seed": "random seed: the weights and the order of the data",
    "threads": "TensorFlow CPU threads (0 = all cores)",
}
REQUIRED = ("corpus", "run_dir")  # no default: the command names them
RESUMABLE_HELP = "checkpoint and stop at this step; the same command without it resumes"


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def trainer_options(
    defaults: Any, helps: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """The argparse parent (`parents=[...]`) of a trainer: the options of TRAINER_OPTIONS
    that its config dataclass `defaults` has, typed and defaulted from it, plus
    --stop-after when the trainer can stop and resume (a `stop_after` field)."""
    helps = {**TRAINER_OPTIONS, **(helps or {})}
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("training options every trainer has")
    fields = {f.name for f in dataclasses.fields(defaults)}
    for name in TRAINER_OPTIONS:
        if name not in fields:
            continue
        if name in REQUIRED:
            group.add_argument(flag(name), type=Path, required=True, help=helps[name])
            continue
        default = getattr(defaults, name)
        kind = type(default)
        group.add_argument(
            flag(name), type=kind, default=default, help=f"{helps[name]} (default: %(default)s)"
        )
    if "stop_after" in fields:
        group.add_argument(
            "--stop-after", type=int, default=None, metavar="STEP", help=RESUMABLE_HELP
        )
    return parent


def export_options(
    *,
    out_example: str,
    name: str | None,
    language: str | None,
    what: str = "the corpus",
    run_dir: bool = True,
) -> argparse.ArgumentParser:
    """The argparse parent of an export CLI: --run-dir (the finished training run, unless
    `run_dir` is False), --out (a new model version directory), --name (required when
    `name` is None) and --language (likewise)."""
    parent = argparse.ArgumentParser(add_help=False)
    if run_dir:
        parent.add_argument(
            "--run-dir", type=Path, required=True, help="the finished training run directory"
        )
    parent.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"model version directory to create, e.g. {out_example}",
    )
    name_help = "model name as served" + ("" if name else f", e.g. {Path(out_example).parent.name}")
    parent.add_argument("--name", default=name, required=name is None, help=name_help)
    parent.add_argument(
        "--language",
        default=language,
        required=language is None,
        help=f"ISO 639-1 language of {what}",
    )
    return parent


def checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """--checkpoint best|last: which checkpoint of a resumable run to export."""
    parser.add_argument(
        "--checkpoint",
        default="best",
        choices=["best", "last"],
        help="which checkpoint to export (default: best held-out loss)",
    )


def print_json(value: object) -> None:
    """A command's result (a model card, a run's metrics) on stdout, readable and parseable."""
    print(json.dumps(value, indent=2, ensure_ascii=False))
