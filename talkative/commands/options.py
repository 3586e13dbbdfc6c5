"""Options several sub-commands share, so they read and mean the same everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from talkative_common import DEFAULT_MODEL_REPOSITORY


def add_models_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir",
        type=Path,
        default=DEFAULT_MODEL_REPOSITORY,
        metavar="DIR",
        help="model repository laid out as NAME/VERSION/ (default: serving/models)",
    )
