"""The `talkative` command as a user runs it: a child process of the installed package
(-P: never a folder of the current directory), its output captured as text."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_talkative(
    *args: str,
    cwd: Path | None = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """`talkative ARGS` run in `cwd` with the environment `env` (default: this one's)."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "talkative.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=None if env is None else dict(env),
        timeout=timeout,
    )
