"""King James Bible (English) from Debian's `bible-kjv`: one document per book.

The `bible` program prints chapters as a heading line ("1 Samuel 3") followed by
verses ("  4 text...") wrapped over several lines; we rebuild each verse and write
it as "chapter:verse text", the layout a reader recognises as a Bible verse.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from training.corpora.common import CorpusManifest, Document, every_nth, write_corpus

_HEADING = re.compile(r"^(?P<book>(?:[123] )?[A-Z][A-Za-z ]+?) (?P<chapter>\d+)$")
_VERSE = re.compile(r"^\s+(?P<verse>\d+) (?P<text>.*)$")
DATA_DIRS = ("/usr/lib", "/usr/share/bible-kjv")


def dump_bible(bible: str = "bible") -> str:
    """Run the Debian `bible` program over the whole canon and return its output."""
    exe = shutil.which(bible)
    if exe is None:
        raise FileNotFoundError(
            "the `bible` program is missing: install Debian's bible-kjv and bible-kjv-text "
            "(make corpora does it)"
        )
    data_dir = next((d for d in DATA_DIRS if Path(d, "bible.data").exists()), DATA_DIRS[0])
    result = subprocess.run(
        [exe, "-p", data_dir, "Gen1:1-Rev22:21"],
        check=True,
        capture_output=True,
        text=True,
        encoding="ascii",
    )
    return result.stdout


def parse_books(dump: str) -> Iterator[Document]:
    """Turn the program's output into one Document per book, verses as 'c:v text'."""
    book: str | None = None
    chapter = 0
    lines: list[str] = []
    verse_no: str | None = None
    verse_text: list[str] = []

    def flush_verse() -> None:
        nonlocal verse_no, verse_text
        if verse_no is not None:
            lines.append(f"{chapter}:{verse_no} {' '.join(verse_text)}")
        verse_no, verse_text = None, []

    for raw in dump.splitlines():
        if not raw.strip():
            continue
        heading = _HEADING.match(raw)
        if heading:
            flush_verse()
            if heading["book"] != book:
                if book is not None:
                    yield Document(book, "\n".join([book, "", *lines]))
                book, lines = heading["book"], []
            chapter = int(heading["chapter"])
            continue
        verse = _VERSE.match(raw)
        if verse:
            flush_verse()
            verse_no, verse_text = verse["verse"], [verse["text"].strip()]
        elif verse_no is not None:
            verse_text.append(raw.strip())
        else:
            raise ValueError(f"unexpected line before any verse: {raw!r}")
    flush_verse()
    if book is not None:
        yield Document(book, "\n".join([book, "", *lines]))


def build(out_dir: Path, held_out_every: int = 10) -> CorpusManifest:
    books = list(parse_books(dump_bible()))
    if len(books) != 66:
        raise ValueError(f"expected the 66 books of the King James Bible, found {len(books)}")
    manifest = CorpusManifest(
        name="kjv_en",
        language="en",
        source="King James Bible, Debian packages bible-kjv + bible-kjv-text",
        licence="public domain (outside the UK's Crown patent)",
        split_rule=f"every {held_out_every}th book in canonical order is held out for validation",
    )
    return write_corpus(
        books, out_dir, held_out=every_nth(books, held_out_every), manifest=manifest, total=66
    )
