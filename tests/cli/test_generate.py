"""`talkative generate` as a user runs it: a real process on a model repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_talkative


def talkative(*args: str) -> subprocess.CompletedProcess[str]:
    return run_talkative(*args)


def test_help_documents_every_option() -> None:
    out = talkative("generate", "--help")
    assert out.returncode == 0
    for option in (
        "--model",
        "--prompt",
        "--max-new-tokens",
        "--temperature",
        "--top-k",
        "--top-p",
        "--seed",
        "--models-dir",
    ):
        assert option in out.stdout


def test_generates_reproducibly(tiny_repository: Path) -> None:
    args = (
        "generate",
        "--models-dir",
        str(tiny_repository),
        "--model",
        "tiny_en",
        "--prompt",
        "And the king",
        "--max-new-tokens",
        "40",
        "--seed",
        "3",
    )
    first, second = talkative(*args), talkative(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("And the king") and len(first.stdout.rstrip("\n")) >= 40
    assert first.stdout == second.stdout
    assert "seed 3" in first.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "nope"), "no model 'nope'"),
        (("--temperature", "9"), "--temperature"),
        (("--max-new-tokens", "0"), "--max-new-tokens"),
        (("--prompt", ""), "--prompt"),
        (("--seed", "-4"), "--seed"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    tiny_repository: Path, args: tuple[str, ...], message: str
) -> None:
    base = {"--models-dir": str(tiny_repository), "--model": "tiny_en", "--prompt": "And"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    out = talkative("generate", *[x for kv in base.items() for x in kv])
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
