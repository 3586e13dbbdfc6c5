"""Bibles as training text: 66 books in canonical order, references removed, one split rule.

Every translation is reduced to `Book`s (canonical index, its own book name, chapters of
verse texts) and rendered the same way: the book's name, then one paragraph per chapter with
the verses as running prose, so no "12:18" reference reaches a model. The held-out books are
chosen by canonical index, not by name, so every translation holds out the same books and no
validation book is seen in another translation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.corpora.common import CorpusManifest, Document, write_corpus

# English names of the 66 books of the Protestant canon, in order: the manifest's common key.
CANON: tuple[str, ...] = (
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
    "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon",
    "Hebrews", "James", "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude",
    "Revelation",
)  # fmt: skip
# Chapters per book (KJV versification): checks that a source's books are the canon, in order.
CHAPTERS: tuple[int, ...] = (
    50, 40, 27, 36, 34, 24, 21, 4, 31, 24, 22, 25, 29, 36, 10, 13, 10, 42, 150, 31, 12, 8,
    66, 52, 5, 48, 12, 14, 3, 9, 1, 4, 7, 3, 3, 3, 2, 14, 4, 28, 16, 24, 21, 28, 16, 16, 13,
    6, 6, 4, 4, 5, 3, 6, 4, 3, 1, 13, 5, 5, 3, 5, 1, 1, 1, 22,
)  # fmt: skip
# Where a translation's versification splits a book differently (Joel 2:28-32 as chapter 3 in
# the Hebrew order, Malachi 4 folded into 3), one chapter more or less is still that book.
CHAPTER_TOLERANCE = 1
VERSE_REFERENCE = re.compile(r"\b\d+:\d+\b")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Book:
    index: int  # 1-based position in CANON
    name: str  # as the translation names it
    chapters: tuple[tuple[str, ...], ...]  # verse texts, without numbers


@dataclass(frozen=True)
class Translation:
    """What a Bible corpus says about where it came from."""

    name: str  # corpus name, e.g. kjv_en
    language: str
    title: str  # e.g. "King James Bible"
    source: str
    licence: str


def check_canon(books: Sequence[Book], translation: str) -> None:
    """66 books, indices 1..66, each with the canonical number of chapters (give or take one)."""
    if len(books) != len(CANON):
        raise ValueError(f"{translation}: expected the 66 books of the canon, found {len(books)}")
    for expected, book in enumerate(books, start=1):
        want = CHAPTERS[expected - 1]
        if book.index != expected or abs(len(book.chapters) - want) > CHAPTER_TOLERANCE:
            raise ValueError(
                f"{translation}: book {expected} ({CANON[expected - 1]}, {want} chapters) is "
                f"{book.name!r} with {len(book.chapters)} chapters: not the canonical order"
            )


def held_out_indices(every: int) -> set[int]:
    """Canonical indices n, 2n, 3n... (1-based): the same books in every translation."""
    return {i for i in range(1, len(CANON) + 1) if i % every == 0}


def prose(verse: str) -> str:
    return _SPACES.sub(" ", verse).strip()


def render(book: Book) -> Document:
    """The book's name, then one paragraph per chapter: verses as running prose, no numbers."""
    paragraphs = [" ".join(v for v in map(prose, chapter) if v) for chapter in book.chapters]
    text = "\n\n".join([book.name, *(p for p in paragraphs if p)])
    if VERSE_REFERENCE.search(text):
        # A reference inside the verse text itself (a footnote left by the source) is apparatus.
        text = VERSE_REFERENCE.sub("", text)
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return Document(book.name, text)


def held_out_titles(books: Sequence[Book], every: int) -> set[str]:
    wanted = held_out_indices(every)
    return {b.name for b in books if b.index in wanted}


def split_rule(every: int) -> str:
    names = ", ".join(f"{i} {CANON[i - 1]}" for i in sorted(held_out_indices(every)))
    return (
        f"whole books; every {every}th book in canonical order (by index, the same books in "
        f"every translation) is held out for validation: {names}"
    )


def build_bible(
    books: Sequence[Book], translation: Translation, out_dir: Path, held_out_every: int = 10
) -> CorpusManifest:
    check_canon(books, translation.name)
    manifest = CorpusManifest(
        name=translation.name,
        language=translation.language,
        source=translation.source,
        licence=translation.licence,
        split_rule=split_rule(held_out_every),
    )
    docs = [render(b) for b in books]
    return write_corpus(
        docs, out_dir, held_out=held_out_titles(books, held_out_every), manifest=manifest, total=66
    )


def group_verses(rows: Iterable[tuple[int, int, str]]) -> list[list[list[str]]]:
    """(book, chapter, text) rows in order -> books of chapters of verses (numbers dropped)."""
    books: list[list[list[str]]] = []
    last: tuple[int, int] | None = None
    for book, chapter, text in rows:
        if last is None or book != last[0]:
            books.append([])
        if last is None or (book, chapter) != last:
            books[-1].append([])
        books[-1][-1].append(text)
        last = (book, chapter)
    return books
