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
import typing
from collections.abc import Mapping, Sequence
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
RESUMABLE_HELP = "checkpoint and stop at this step; the same command without it resumes"


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def config_options(
    group: argparse._ActionsContainer,
    config: type[Any],
    helps: Mapping[str, str],
    *,
    choices: Mapping[str, Sequence[str]] | None = None,
    metavars: Mapping[str, str] | None = None,
) -> None:
    """Add one option to `group` for each field named in `helps` (in that order), typed and
    defaulted from the config dataclass `config`: a field without a default is required,
    `X | None` takes X, and a bool that defaults to True becomes a --no-... switch."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    types = typing.get_type_hints(config)
    for name, text in helps.items():
        field = fields[name]
        kind = _value_type(types[name])
        extra: dict[str, Any] = {}
        if choices and name in choices:
            extra["choices"] = choices[name]
        if metavars and name in metavars:
            extra["metavar"] = metavars[name]
        if field.default is dataclasses.MISSING:
            group.add_argument(flag(name), type=kind, required=True, help=text, **extra)
        elif kind is bool:
            on = field.default is True
            group.add_argument(
                flag(name) if not on else "--no-" + flag(name)[2:],
                dest=name,
                action="store_false" if on else "store_true",
                help=text,
            )
        else:
            shown = "" if field.default is None else " (default: %(default)s)"
            group.add_argument(
                flag(name), type=kind, default=field.default, help=text + shown, **extra
            )


def _value_type(hint: Any) -> Any:
    """The type an option parses to: X for `X | None`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def trainer_options(
    config: type[Any], helps: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """The argparse parent (`parents=[...]`) of a trainer: the options of TRAINER_OPTIONS
    that its config dataclass has, typed and defaulted from it, plus --stop-after when the
    trainer can stop and resume (a `stop_after` field)."""
    helps = {**TRAINER_OPTIONS, **(helps or {})}
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("training options every trainer has")
    fields = {f.name for f in dataclasses.fields(config)}
    config_options(group, config, {k: helps[k] for k in TRAINER_OPTIONS if k in fields})
    if "stop_after" in fields:
        config_options(
            group, config, {"stop_after": RESUMABLE_HELP}, metavars={"stop_after": "STEP"}
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
