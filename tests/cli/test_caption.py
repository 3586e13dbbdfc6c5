"""`talkative caption` as a user runs it: a real process on the committed default captioner."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_talkative
from training.captioner import offline_photos

CHELSEA = next(p for p in offline_photos.PHOTOS if p.name == "chelsea")


def talkative(*args: str) -> subprocess.CompletedProcess[str]:
    return run_talkative("caption", *args)


def ranked(stdout: str) -> list[tuple[str, float]]:
    lines = stdout.strip().splitlines()
    out = []
    for n, line in enumerate(lines, 1):
        match = re.fullmatch(rf"{n}\. (.+)  \(log-probability (-?\d+\.\d\d)\)", line)
        assert match, line
        out.append((match[1], float(match[2])))
    return out


@pytest.fixture(scope="module")
def cat_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "chelsea.jpg"
    path.write_bytes(offline_photos.as_bytes(CHELSEA, "JPEG"))
    return path


def test_help_documents_every_option() -> None:
    out = talkative("--help")
    assert out.returncode == 0
    for option in ("IMAGE", "--beam-size", "--model", "--models-dir"):
        assert option in out.stdout


@pytest.mark.slow
def test_prints_ranked_captions(cat_photo: Path) -> None:
    out = talkative(str(cat_photo))
    assert out.returncode == 0, out.stderr
    captions = ranked(out.stdout)
    assert len(captions) == 3
    assert "cat" in captions[0][0]
    assert [lp for _, lp in captions] == sorted((lp for _, lp in captions), reverse=True)


@pytest.mark.slow
@pytest.mark.parametrize("width", [1, 5])
def test_beam_size_sets_how_many_captions_are_searched(cat_photo: Path, width: int) -> None:
    out = talkative(str(cat_photo), "--beam-size", str(width))
    assert out.returncode == 0, out.stderr
    captions = ranked(out.stdout)
    assert len(captions) == width and "cat" in captions[0][0]


@pytest.mark.parametrize("width", ["0", "11", "three"])
def test_bad_beam_sizes_are_refused(cat_photo: Path, width: str) -> None:
    out = talkative(str(cat_photo), "--beam-size", width)
    assert out.returncode == 2 and "--beam-size" in out.stderr and not out.stdout


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    out = talkative(str(tmp_path / "nope.jpg"))
    assert out.returncode == 2 and "cannot read" in out.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty"),
        (b"just some text, not a photo\n", "not"),
        (None, "truncated"),  # the first half of a real JPEG
    ],
)
def test_files_that_are_not_photos_are_refused(
    tmp_path: Path, cat_photo: Path, content: bytes | None, says: str
) -> None:
    data = cat_photo.read_bytes()
    path = tmp_path / "photo.jpg"
    path.write_bytes(content if content is not None else data[: len(data) // 2])
    out = talkative(str(path))
    assert out.returncode == 2 and not out.stdout
    assert out.stderr.startswith("error: ") and says in out.stderr.lower(), out.stderr


def test_an_unknown_model_is_reported(cat_photo: Path) -> None:
    out = talkative(str(cat_photo), "--model", "nope")
    assert out.returncode == 2 and "no model 'nope'" in out.stderr and "captioner" in out.stderr
