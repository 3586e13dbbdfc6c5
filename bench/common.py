"""What the benchmark scripts share: how their command lines open, and the model repository
most of them read.

The scripts run by path (`python bench/caption.py`), after putting the repository root on
sys.path, so they import this as `bench.common`.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talkative_common.cli import command_parser

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "serving" / "models"


def bench_parser(main: Callable[..., object], **options: Any) -> argparse.ArgumentParser:
    """The parser of the script whose entry point is `main`: usage `python bench/<script>`,
    described by main's docstring unless `options` give a description."""
    script = Path(inspect.getfile(main)).name
    return command_parser(main, prog=f"python bench/{script}", **options)


def repository_option(
    parser: argparse.ArgumentParser,
    help: str = "model repository <name>/<version>/",
    flag: str = "--repository",
) -> None:
    """The model repository a benchmark reads (default: serving/models)."""
    parser.add_argument(flag, type=Path, default=MODELS, help=f"{help} (default: %(default)s)")
