"""Project Gutenberg's machine-readable catalogues, and the `Book` model all sources share.

Two feeds, both under `cache/epub/feeds/` on every mirror:

- `pg_catalog.csv`: one row per item (`Text#,Type,Issued,Title,Language,Authors,Subjects,
  LoCC,Bookshelves`); several languages, authors and subjects are joined by "; ", and
  titles with a subtitle span two lines inside their quotes;
- `rdf-files.tar.bz2`: one RDF/XML file per item (`cache/epub/N/pgN.rdf`), which also
  lists the files of each book (`formats`). The tarball is ~100 MB unpacked, so it is
  streamed member by member (`tarfile` "r|bz2"), never extracted or held in memory.

Only "Text" items are kept: the catalogues also list audio books, images, data sets.
"""

from __future__ import annotations

import csv
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dcterms": "http://purl.org/dc/terms/",
    "pgterms": "http://www.gutenberg.org/2009/pgterms/",
    "dcam": "http://purl.org/dc/dcam/",
}
_RDF_ABOUT = f"{{{NS['rdf']}}}about"
_RDF_RESOURCE = f"{{{NS['rdf']}}}resource"
_LCC = "http://purl.org/dc/terms/LCC"
_EBOOK_ID = re.compile(r"ebooks/(\d+)$")
_LIFE_DATES = re.compile(r",?\s*(?:-?\d{1,4}\??\s*(?:BCE|BC|CE|AD)?\s*-\s*(?:-?\d{1,4}\??)?.*)$")


@dataclass(frozen=True)
class Book:
    """One PG e-book, whichever catalogue it came from."""

    id: int
    title: str
    authors: tuple[str, ...]  # as the catalogue writes them: "Hugo, Victor, 1802-1885"
    languages: tuple[str, ...]  # ISO 639-1 codes ("fr"), as PG uses them
    subjects: tuple[str, ...] = ()  # empty where the catalogue has none (GUTINDEX)
    formats: tuple[str, ...] = ()  # file URLs the RDF lists, if any


class CatalogError(ValueError):
    """A catalogue cannot answer the question asked of it."""


def author_names(author: str) -> tuple[str, ...]:
    """The ways a reader may write an author: "Hugo, Victor, 1802-1885" -> also "Victor Hugo".

    The CSV and RDF write "Last, First, dates"; GUTINDEX writes "First Last". Matching
    against both lets `author="Victor Hugo"` and `author="hugo"` work on every catalogue.
    """
    names = [author]
    bare = _LIFE_DATES.sub("", re.sub(r"\s*\[[^\]]*\]\s*$", "", author)).strip()
    if ", " in bare:
        last, first = bare.split(", ", 1)
        first = re.sub(r"\s*\([^)]*\)", "", first).strip()  # "Victor (Victor Marie)"
        names.append(f"{first} {last}")
    return tuple(names)


def select(
    books: Iterable[Book],
    *,
    language: str,
    author: str | None = None,
    subject: str | None = None,
) -> list[Book]:
    """Books in `language` (ISO 639-1, or a name such as "French"), optionally by an author
    and on a subject; author and subject match case-insensitively on substrings.

    Asking for a subject of a catalogue that has none (GUTINDEX) raises `CatalogError`
    rather than quietly selecting nothing.
    """
    from training.corpora.gutindex import language_codes  # the name table lives there

    pool = list(books)
    codes = language_codes(language)
    if subject is not None and pool and not any(b.subjects for b in pool):
        raise CatalogError(
            "this catalogue lists no subjects (GUTINDEX.ALL has none): "
            "use the 'csv' or 'rdf' catalogue to select by subject"
        )
    out = []
    for book in pool:
        if not any(code in book.languages for code in codes):
            continue
        if author is not None:
            needle = author.casefold()
            names = [n.casefold() for a in book.authors for n in author_names(a)]
            if not any(needle in n for n in names):
                continue
        if subject is not None:
            needle = subject.casefold()
            if not any(needle in s.casefold() for s in book.subjects):
                continue
        out.append(book)
    return out


def _title(raw: str) -> str:
    """PG titles put the subtitle on a second line: "Title\\nSubtitle" -> "Title: Subtitle"."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    title = lines[0]
    for line in lines[1:]:
        title += " " + line if title[-1] in ":;,.-" else ": " + line
    return title


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


# -- pg_catalog.csv ---------------------------------------------------------------------------


def parse_csv(stream: IO[str]) -> Iterator[Book]:
    """Books from `pg_catalog.csv` (an open text stream, opened with newline="")."""
    for row in csv.DictReader(stream):
        key = {k.strip().lstrip("\ufeff"): (v or "") for k, v in row.items() if k is not None}
        if key.get("Type", "Text").strip() != "Text":
            continue
        try:
            book_id = int(key["Text#"])
        except (KeyError, ValueError):
            continue  # a malformed row: skip rather than fail a 70,000-row file
        subjects = _split(key.get("Subjects", "")) + _split(key.get("Bookshelves", ""))
        yield Book(
            id=book_id,
            title=_title(key.get("Title", "")),
            authors=_split(key.get("Authors", "")),
            languages=tuple(code.lower() for code in _split(key.get("Language", ""))),
            subjects=subjects,
        )


def read_csv(path: Path) -> list[Book]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(parse_csv(fh))


# -- rdf-files.tar.bz2 ------------------------------------------------------------------------


def _values(parent: ET.Element, prop: str) -> list[tuple[str, str | None]]:
    """(rdf:value, dcam:memberOf) of each `prop`/rdf:Description under `parent`."""
    out: list[tuple[str, str | None]] = []
    for node in parent.findall(prop, NS):
        desc = node.find("rdf:Description", NS)
        if desc is None:
            if node.text and node.text.strip():
                out.append((node.text.strip(), None))
            continue
        value = desc.findtext("rdf:value", default="", namespaces=NS).strip()
        member = desc.find("dcam:memberOf", NS)
        out.append((value, member.get(_RDF_RESOURCE) if member is not None else None))
    return out


def parse_rdf(data: bytes | IO[bytes]) -> Book | None:
    """One `pgN.rdf`; None for an item that is not a text (or has no ebook node)."""
    root = ET.fromstring(data) if isinstance(data, bytes) else ET.parse(data).getroot()
    ebook = root.find("pgterms:ebook", NS)
    if ebook is None:
        return None
    match = _EBOOK_ID.search(ebook.get(_RDF_ABOUT, ""))
    if match is None:
        return None
    types = [value for value, _ in _values(ebook, "dcterms:type")]
    if types and "Text" not in types:
        return None
    authors = tuple(
        name.strip()
        for agent in ebook.findall("dcterms:creator/pgterms:agent", NS)
        if (name := agent.findtext("pgterms:name", default="", namespaces=NS)).strip()
    )
    subjects = tuple(v for v, member in _values(ebook, "dcterms:subject") if member != _LCC)
    shelves = tuple(v for v, _ in _values(ebook, "pgterms:bookshelf"))
    formats = tuple(
        about
        for node in ebook.findall("dcterms:hasFormat/pgterms:file", NS)
        if (about := node.get(_RDF_ABOUT))
    )
    return Book(
        id=int(match.group(1)),
        title=_title(ebook.findtext("dcterms:title", default="", namespaces=NS)),
        authors=authors,
        languages=tuple(v.lower() for v, _ in _values(ebook, "dcterms:language") if v),
        subjects=subjects + shelves,
        formats=formats,
    )


def iter_rdf_tar(path: Path) -> Iterator[Book]:
    """Books from `rdf-files.tar.bz2`, streamed: one member in memory at a time."""
    with tarfile.open(path, mode="r|*") as tar:  # "|": a stream, no seeking, no index
        for member in tar:
            if not (member.isfile() and member.name.endswith(".rdf")):
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            with fh:
                try:
                    book = parse_rdf(fh.read())
                except ET.ParseError:
                    continue  # one broken file must not lose the other 70,000
            if book is not None:
                yield book


def read_rdf_tar(path: Path) -> list[Book]:
    return sorted(iter_rdf_tar(path), key=lambda b: b.id)
