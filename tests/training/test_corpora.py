"""The offline Bible corpora as `make corpora` builds them: whole books held out, checksums true."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.conftest import CORPORA
from training.corpora.kjv import parse_books

HELD_OUT_EN = ["2 Samuel", "Proverbs", "Amos", "Matthew", "Philippians", "1 Peter"]


def manifest(name: str) -> dict:
    path = CORPORA / name / "manifest.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make corpora`")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["kjv_en", "segond_fr"])
def test_manifest_matches_the_files(name: str) -> None:
    m = manifest(name)
    for file, info in m["files"].items():
        data = (CORPORA / name / file).read_bytes()
        assert len(data) == info["bytes"]
        assert len(data.decode("utf-8")) == info["chars"]
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
    assert m["files"]["train.txt"]["chars"] > 3_500_000
    assert m["files"]["valid.txt"]["chars"] > 300_000


@pytest.mark.parametrize("name", ["kjv_en", "segond_fr"])
def test_whole_books_are_held_out(name: str) -> None:
    m = manifest(name)
    train, valid = m["documents"]["train"], m["documents"]["valid"]
    assert len(train) + len(valid) == 66 and len(valid) == 6
    assert not set(train) & set(valid)
    train_text = (CORPORA / name / "train.txt").read_text(encoding="utf-8")
    valid_text = (CORPORA / name / "valid.txt").read_text(encoding="utf-8")
    for book in valid:
        title = re.compile(rf"^{re.escape(book)}$", re.MULTILINE)
        assert title.search(valid_text) and not title.search(train_text), book
    if name == "kjv_en":
        assert valid == HELD_OUT_EN


@pytest.mark.parametrize("name", ["kjv_en", "segond_fr"])
def test_text_is_clean(name: str) -> None:
    text = (CORPORA / name / "train.txt").read_text(encoding="utf-8")
    assert "\r" not in text and "\t" not in text and "  " not in text
    assert not re.search(r"[\u2018\u2019\u201c\u201d\u00a0]", text)  # typography folded
    verse = re.compile(r"^\d+:\d+ \S")
    lines = [line for line in text.splitlines() if line]
    assert sum(bool(verse.match(line)) for line in lines) / len(lines) > 0.95


def test_french_keeps_its_accents() -> None:
    text = (CORPORA / "segond_fr" / "train.txt").read_text(encoding="utf-8")
    for ch in "éèàçêôù":
        assert ch in text
    assert "Au commencement, Dieu créa les cieux et la terre." in text


def test_kjv_parser_joins_wrapped_verses() -> None:
    dump = (
        "Genesis 1\n"
        "  1 In the beginning God created the heaven and the\n"
        "earth.\n"
        "  2 And the earth was without form.\n"
        "Genesis 2\n"
        "  1 Thus the heavens were finished.\n"
        "Exodus 1\n"
        "  1 Now these are the names.\n"
    )
    books = list(parse_books(dump))
    assert [b.title for b in books] == ["Genesis", "Exodus"]
    assert books[0].text.splitlines()[2:] == [
        "1:1 In the beginning God created the heaven and the earth.",
        "1:2 And the earth was without form.",
        "2:1 Thus the heavens were finished.",
    ]


def test_corpus_paths_are_the_ones_the_makefile_builds() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "data/corpora/kjv_en/manifest.json" in makefile
    assert "data/corpora/segond_fr/manifest.json" in makefile
