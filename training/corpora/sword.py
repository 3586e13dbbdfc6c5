"""Bibles in SWORD modules (Debian sword-text-*), read with PyPI pysword, OSIS markup removed."""

from __future__ import annotations

import html
import re
from pathlib import Path

from training.corpora.bibles import CANON, Book

SWORD_DIR = Path("/usr/share/sword")
# Apparatus whose content goes: footnotes, cross references, section titles, Strong's
# glosses, variant readings. Other tags (<w>, <q>, <divineName>...) keep their words.
_DROP = re.compile(
    r"<(note|title|rdg|rdgGroup|abbr|catchWord|index|figure)\b[^>]*?(?:/>|>.*?</\1>)",
    re.DOTALL | re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
_DIV = re.compile(r"<div\b[^>]*>")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]\u2019\u201d])")
_SPACES = re.compile(r"\s+")


def _canonical_part(text: str) -> str:
    """Cut the verse where its book ends: WEB appends its glossary to Revelation 22:21."""
    for div in _DIV.finditer(text):
        tag = div.group()
        if ('type="book"' in tag and "eID=" in tag) or 'type="glossary"' in tag:
            return text[: div.start()]
    return text


def clean_osis(text: str) -> str:
    text = _canonical_part(text)
    # A footnote often stands where a space was ("God<note>...</note>created"): keep the space.
    text = _DROP.sub(" ", text)
    text = html.unescape(_TAG.sub("", text))
    text = _SPACES.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def read_books(module: str, sword_dir: Path = SWORD_DIR) -> list[Book]:
    """The 66 books of `module`, mapped to the canon by pysword's KJV book order."""
    try:
        from pysword.canons import canons
        from pysword.modules import SwordModules
    except ModuleNotFoundError as exc:
        raise FileNotFoundError("pysword is missing: pip install '.[corpus]'") from exc
    if not (sword_dir / "mods.d").is_dir():
        raise FileNotFoundError(f"no SWORD modules in {sword_dir}: install Debian sword-text-*")
    modules = SwordModules(str(sword_dir))
    found = modules.parse_modules()
    if module not in found:
        raise FileNotFoundError(
            f"SWORD module {module} is missing from {sword_dir} (found {sorted(found)}): "
            "install its Debian package (make corpora does it)"
        )
    bible = modules.get_bible_from_module(module)
    _cache_blocks(bible)
    structure = bible.get_structure().get_books()
    present = {b.name: b for part in ("ot", "nt") for b in structure.get(part, [])}
    # The module's versification may add books (NRSVA's deuterocanon): take the 66 by name.
    kjv_names = [entry[0] for part in ("ot", "nt") for entry in canons["kjv"][part]]
    books = []
    for index, name in enumerate(kjv_names, start=1):
        if name not in present:
            raise ValueError(f"{module}: book {index} ({name}) is missing")
        chapters = []
        for chapter in range(1, present[name].num_chapters + 1):
            verses = bible.get_iter(books=[name], chapters=[chapter], clean=False)
            chapters.append(tuple(v for v in (clean_osis(raw) for raw in verses) if v))
        books.append(Book(index, _display_name(name, index), tuple(c for c in chapters if c)))
    return books


def _cache_blocks(bible: object) -> None:
    """pysword inflates a whole compressed block (a book) for every verse: keep the last one.

    Reading book by book, this turns minutes of zlib into seconds.
    """
    inflate = bible._decompressed_text  # type: ignore[attr-defined]
    last: dict[tuple[str, int], bytes] = {}

    def cached(testament: str, buf_num: int) -> bytes:
        key = (testament, buf_num)
        if key not in last:
            last.clear()
            last[key] = inflate(testament, buf_num)
        return last[key]

    bible._decompressed_text = cached  # type: ignore[attr-defined]


def _display_name(name: str, index: int) -> str:
    # pysword spells "I Samuel", "Revelation of John": the canon's English names read better.
    return CANON[index - 1] if name != CANON[index - 1] else name
