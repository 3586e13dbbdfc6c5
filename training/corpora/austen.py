"""Jane Austen's six novels from Debian's r-cran-janeaustenr, read without R.

The package keeps each novel as an R character vector (one element per printed line) in
the lazy-load database data/Rdata.rdb, indexed by data/Rdata.rdx. PyPI `rdata` parses R's
serialisation; the .rdb blobs are a 4-byte length and a zlib stream each.
"""

from __future__ import annotations

import re
import warnings
import zlib
from pathlib import Path

from training.corpora.common import CorpusManifest, Document, write_corpus
from training.corpora.debian_files import DEFAULT_CACHE, unpacked

PACKAGE = "r-cran-janeaustenr"
DATA = "usr/lib/R/site-library/janeaustenr/data/Rdata"
INSTALLED = Path("/usr/lib/R/site-library/janeaustenr/data/Rdata")
TITLES = {
    "sensesensibility": "Sense and Sensibility",
    "prideprejudice": "Pride and Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
# A fixed choice, not a draw: the shortest novel, so most of Austen stays in training.
HELD_OUT = "Persuasion"
_HEADING = re.compile(r"^(CHAPTER|Chapter|VOLUME|Volume) [0-9IVXLC]+\.?$")
_END = re.compile(r"^(THE END|FINIS|Finis|A NOTE ON THE TEXT)$")
_SEPARATOR = re.compile(r"^[* ]+$")  # "* * * * *", "***": scene breaks
_FOOTNOTE = re.compile(r"^\*\w")  # "*Vide a letter from Mr. Richardson..."
_FOOTNOTE_MARK = re.compile(r"(?<=\S)\*")
_EDITOR = re.compile(r"\[End volume[^\]]*\]")  # the e-text's own remarks
_SPACES = re.compile(r"\s+")


def rdata_path(cache: Path = DEFAULT_CACHE) -> Path:
    if INSTALLED.with_suffix(".rdx").exists():
        return INSTALLED
    return unpacked(PACKAGE, cache) / DATA


def read_novels(base: Path) -> dict[str, list[str]]:
    """Variable name -> lines, from BASE.rdx (index) and BASE.rdb (data)."""
    try:
        import rdata
    except ModuleNotFoundError as exc:
        raise FileNotFoundError("rdata is missing: pip install '.[corpus]'") from exc
    with warnings.catch_warnings():
        # The blobs are bare serialisations, without the RDS header rdata looks for.
        warnings.filterwarnings("ignore", "Unknown file type", UserWarning)
        index = rdata.conversion.convert(
            rdata.parser.parse_data(base.with_suffix(".rdx").read_bytes())
        )
        blob = base.with_suffix(".rdb").read_bytes()
        novels = {}
        for name, (offset, length) in index["variables"].items():
            start, end = int(offset), int(offset) + int(length)
            raw = zlib.decompress(blob[start + 4 : end])  # 4 bytes: the inflated length
            lines = rdata.conversion.convert(rdata.parser.parse_data(raw))
            novels[str(name)] = [str(line) for line in lines]
    return novels


def clean_novel(lines: list[str]) -> str:
    """The story only: no title page, headings, scene-break stars, footnotes or end note.

    Wrapped lines are joined, one paragraph per line; _underscores_ (italics) go.
    """
    start = next(i for i, line in enumerate(lines) if _HEADING.match(line.strip()))
    text = _EDITOR.sub("", "\n".join(lines[start:]))
    paragraphs: list[str] = []
    current: list[str] = []
    for raw in [*text.split("\n"), ""]:
        line = raw.strip()
        if _END.match(line):
            break
        if not line or _HEADING.match(line) or _SEPARATOR.match(line) or _FOOTNOTE.match(line):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    body = "\n\n".join(_SPACES.sub(" ", p) for p in paragraphs)
    return _FOOTNOTE_MARK.sub("", body.replace("_", ""))


def documents(base: Path | None = None) -> list[Document]:
    novels = read_novels(base or rdata_path())
    missing = set(TITLES) - set(novels)
    if missing:
        raise ValueError(f"janeaustenr lacks {sorted(missing)}")
    return [Document(title, clean_novel(novels[key])) for key, title in TITLES.items()]


def build(out_dir: Path, held_out_every: int = 10) -> CorpusManifest:
    del held_out_every  # six novels: one fixed novel is held out instead
    manifest = CorpusManifest(
        name="austen_en",
        language="en",
        source=f"Jane Austen's six novels, Debian {PACKAGE} (R data read with PyPI rdata); "
        "title pages, chapter headings, footnotes and the e-text's notes removed",
        licence="public domain",
        split_rule=f"whole novels; {HELD_OUT} (fixed) is held out for validation",
    )
    docs = documents()
    return write_corpus(docs, out_dir, held_out={HELD_OUT}, manifest=manifest, total=len(docs))
