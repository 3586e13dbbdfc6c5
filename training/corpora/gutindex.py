"""Parse `GUTINDEX.ALL` (and the yearly `GUTINDEX.YYYY`), PG's human-readable index.

The file is written for people, so the parser works by layout, not by a grammar:

    TITLE and AUTHOR                                                     EBOOK NO.

    Le Tour du Monde en 80 Jours, by Jules Verne                           70001
     [Language: French]
    Memoirs of Napoleon Bonaparte, Complete, by Louis Antoine Fauvelet de   3567
     Bourrienne
     [Subtitle: With Notes by
      R. W. Phipps]

- an entry starts on an unindented line; its continuation lines are indented;
- the e-book number ends the first line (or, in older files, the last title line), right
  aligned, sometimes with a letter ("12345C": still copyrighted, "12345B");
- bracketed lines are attributes ([Language: ...], [Subtitle: ...]) and may wrap;
- there is no language line for English: GUTINDEX only marks the other languages;
- prose before the column header, "~ ~ ~ ~ Posting Dates" and month lines, and
  "<==End of GUTINDEX.ALL==>" are not entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.corpora.pg_catalog import Book
from training.corpora.text_encoding import decode_bytes

# Language names as GUTINDEX writes them -> ISO 639-1 (what the CSV and RDF use). A name
# with no two-letter code keeps its lower-cased name, which no two-letter query matches.
LANGUAGES = {
    "afrikaans": "af",
    "arabic": "ar",
    "bulgarian": "bg",
    "catalan": "ca",
    "chinese": "zh",
    "czech": "cs",
    "danish": "da",
    "dutch": "nl",
    "english": "en",
    "esperanto": "eo",
    "estonian": "et",
    "finnish": "fi",
    "french": "fr",
    "galician": "gl",
    "german": "de",
    "greek": "el",
    "hebrew": "he",
    "hungarian": "hu",
    "icelandic": "is",
    "irish": "ga",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "latin": "la",
    "latvian": "lv",
    "lithuanian": "lt",
    "norwegian": "no",
    "occitan": "oc",
    "polish": "pl",
    "portuguese": "pt",
    "romanian": "ro",
    "russian": "ru",
    "serbian": "sr",
    "slovak": "sk",
    "slovenian": "sl",
    "spanish": "es",
    "swedish": "sv",
    "tagalog": "tl",
    "ukrainian": "uk",
    "welsh": "cy",
    "yiddish": "yi",
    "breton": "br",
    "frisian": "fy",
    "scots gaelic": "gd",
    "gaelic": "gd",
    "sanskrit": "sa",
    "persian": "fa",
    "old english": "ang",
    "middle english": "enm",
    "greek, ancient": "grc",
    "ancient greek": "grc",
}

_HEADER = re.compile(r"^\s*TITLE\s+and\s+AUTHOR\b.*\b(?:EBOOK|ETEXT)\s+NO\.?\s*$", re.I)
_NUMBER = re.compile(r"^(?P<text>.*?\S)?(?P<gap>\s+)(?P<num>\d{1,6})(?P<suffix>[A-Z]?)\s*$")
_SEPARATOR = re.compile(
    r"^\s*(?:~\s*){3,}|^\s*<==.*==>\s*$|^\s*[=*_-]{5,}\s*$|^\s*GUTINDEX\.\w+\s*$", re.I
)
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_MONTH_LINE = re.compile(rf"^\s*(?:{_MONTHS})[a-z]*\.?\s+\d{{4}}\s*:?\s*$", re.I)
_DATE_PREFIX = re.compile(rf"^(?:{_MONTHS})[a-z]*\s+\d{{4}}\s+", re.I)  # "Dec 2003 Title..."
_END = re.compile(r"^\s*<==\s*End of GUTINDEX", re.I)
RIGHT_COLUMN = 70  # a number ending at or past this column is right aligned


@dataclass(frozen=True)
class IndexEntry:
    """One listing: more than a `Book` (the suffix and the attribute lines)."""

    id: int
    title: str
    author: str | None
    languages: tuple[str, ...]
    suffix: str = ""  # "C" (copyrighted), "B", ... as printed after the number
    attributes: dict[str, str] = field(default_factory=dict)  # "Subtitle" -> "..."

    def book(self) -> Book:
        return Book(
            id=self.id,
            title=self.title,
            authors=(self.author,) if self.author else (),
            languages=self.languages,
        )


def language_codes(names: str) -> tuple[str, ...]:
    """'French' -> ('fr',); 'French and English' -> ('fr', 'en'); 'fr' -> ('fr',)."""
    out: list[str] = []
    for part in re.split(r"\s*(?:,|;|/|\band\b|&)\s*", names.strip()):
        name = part.strip().casefold()
        if not name:
            continue
        code = LANGUAGES.get(name, name)
        if code not in out:
            out.append(code)
    if not out and names.strip():
        out.append(names.strip().casefold())
    return tuple(out)


def _number(line: str) -> re.Match[str] | None:
    """The right-aligned e-book number at the end of a line, if there is one.

    A title may end in a number ("Vol. 3"): only a number set off by two or more spaces,
    or pushed out to the right margin, is the e-book number.
    """
    match = _NUMBER.match(line)
    if match is None or match.group("text") is None:
        return None
    if len(match.group("gap")) >= 2 or match.end("num") >= RIGHT_COLUMN:
        return match
    return None


_ATTRIBUTE_START = re.compile(r"^\[[A-Z][A-Za-z .]{1,30}:")


def _brackets(text: str) -> int:
    return text.count("[") - text.count("]")


@dataclass
class _Block:
    title_lines: list[str] = field(default_factory=list)
    attr_lines: list[list[str]] = field(default_factory=list)
    number: int | None = None
    suffix: str = ""
    open_brackets: int = 0

    def add(self, line: str) -> None:
        stripped = line.strip()
        # An attribute that wraps, unless the line opens a new one: some entries forget
        # a "]" ("[Illustrator: Carl Reinhardt"), and the [Language: ...] after it counts.
        if self.open_brackets > 0 and not _ATTRIBUTE_START.match(stripped):
            self.attr_lines[-1].append(stripped)
            self.open_brackets += _brackets(stripped)
            return
        if stripped.startswith("["):
            self.attr_lines.append([stripped])
            self.open_brackets = max(0, _brackets(stripped))
            return
        match = _number(line) if self.number is None else None
        if match is not None:
            self.number = int(match.group("num"))
            self.suffix = match.group("suffix")
            stripped = (match.group("text") or "").strip()
        self.title_lines.append(stripped)

    def entry(self) -> IndexEntry | None:
        if self.number is None or not any(self.title_lines):
            return None
        text = " ".join(part for part in self.title_lines if part)
        text = _DATE_PREFIX.sub("", text)
        text = re.sub(r"\s+\[[^\]]*\]\s*$", "", text)  # "[pnch110.txt]" of the 1990s files
        title, author = text, None
        head, sep, tail = text.rpartition(", by ")
        if sep:
            title, author = head.strip(), tail.strip()
        elif text.lower().startswith("by "):
            title, author = "", text[3:].strip()
        attributes: dict[str, str] = {}
        for lines in self.attr_lines:
            body = " ".join(lines).strip().removeprefix("[").removesuffix("]").strip()
            key, colon, value = body.partition(":")
            if colon:
                k = key.strip()
                v = value.strip()
                attributes[k] = f"{attributes[k]}; {v}" if k in attributes else v
        language = attributes.get("Language")
        return IndexEntry(
            id=self.number,
            title=title,
            author=author or None,
            languages=language_codes(language) if language else ("en",),
            suffix=self.suffix,
            attributes=attributes,
        )


def parse_gutindex(text: str) -> Iterator[IndexEntry]:
    """Entries of a GUTINDEX file, in file order."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Skip the prose header: listings start after the first column header. A file without
    # one (a fragment) is parsed from the top: prose blocks carry no number and are dropped.
    start = next((i + 1 for i, line in enumerate(lines) if _HEADER.match(line)), 0)
    block: _Block | None = None
    for line in lines[start:]:
        if _END.match(line):
            break
        if not line.strip():
            if block is not None and block.open_brackets > 0:
                continue  # a blank inside a wrapped attribute: keep the block open
            if block is not None and (entry := block.entry()) is not None:
                yield entry
            block = None
            continue
        if _HEADER.match(line) or _SEPARATOR.match(line) or _MONTH_LINE.match(line):
            if block is not None and (entry := block.entry()) is not None:
                yield entry
            block = None
            continue
        indented = line[:1].isspace()
        if block is None or (not indented and block.number is not None):
            if block is not None and (entry := block.entry()) is not None:
                yield entry  # entries not separated by a blank line
            block = _Block()
        block.add(line)
    if block is not None and (entry := block.entry()) is not None:
        yield entry


def read_gutindex(path: Path) -> list[Book]:
    """Books of a GUTINDEX file on disk (UTF-8 today, Latin-1 in older copies)."""
    decoded = decode_bytes(path.read_bytes(), repair=False)
    return [entry.book() for entry in parse_gutindex(decoded.text)]
