"""Strip Project Gutenberg's header and licence from a book, by their markers.

The header and the licence change length with every era of PG (and with the title), so
they are cut at the markers PG itself prints, never at a line count:

- start: "*** START OF THE PROJECT GUTENBERG EBOOK X ***" (also "THIS", "ETEXT",
  no spaces, a title wrapped onto the next line), and in the 1990s texts the end of the
  small print, "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*";
- end: "*** END OF THE PROJECT GUTENBERG EBOOK X ***", "End of the Project Gutenberg
  EBook of X", "End of Project Gutenberg's X", "End of this Project Gutenberg Etext".

The body runs from the last start marker before the first end marker (old texts carry
both a START line and the small print) to that end marker. A "Produced by ..." credit
paragraph right after the start is dropped too. A text without both markers raises
`MarkerError`: guessing where the licence begins would put licence text into the corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_START = re.compile(
    r"^[ \t]*\*+[ \t]*START[ \t]+OF[ \t]+(?:THE|THIS)[ \t]+PROJECT[ \t]+GUTENBERG\b[^\n]*$"
    r"|^[ \t]*\*[ \t]*END[ \t]*\*?[ \t]*THE[ \t]+SMALL[ \t]+PRINT[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    r"^[ \t]*\*+[ \t]*END[ \t]+OF[ \t]+(?:THE|THIS)[ \t]+PROJECT[ \t]+GUTENBERG\b[^\n]*$"
    r"|^[ \t]*\**[ \t]*End[ \t]+of[ \t]+(?:the[ \t]+|this[ \t]+)?Project[ \t]+Gutenberg"
    r"(?:'s|\b)[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_CREDIT = re.compile(
    r"^\s*(?:Produced|Prepared|Transcribed|Digiti[sz]ed|Scanned|Proofread)\b[^\n]*\bby\b"
    r"|^\s*(?:This\s+)?e-?(?:text|book)s?\s+(?:was\s+|were\s+)?(?:produced|prepared)\b",
    re.IGNORECASE,
)


class MarkerError(ValueError):
    """No start or no end marker: the text is rejected rather than guessed at."""


@dataclass(frozen=True)
class Stripped:
    text: str
    start_marker: str  # the lines that were recognised, for the log
    end_marker: str
    credit_dropped: bool


def _start_end(text: str) -> tuple[int, int, re.Match[str]]:
    """(where the start marker begins, where the body starts, the end marker)."""
    first_end = None
    for end in _END.finditer(text):
        # A start marker must precede it: "End of Project Gutenberg" in a 1990s header
        # ("...End of Project Gutenberg Etexts are often created...") is not the end.
        if any(s.start() < end.start() for s in _START.finditer(text, 0, end.start())):
            first_end = end
            break
    if first_end is None:
        reason = "no start marker" if _START.search(text) is None else "no end marker"
        raise MarkerError(f"not a Project Gutenberg text with markers ({reason})")
    starts = list(_START.finditer(text, 0, first_end.start()))
    last = starts[-1]
    body = last.end()
    # "*** START OF THE PROJECT GUTENBERG EBOOK THE ADVENTURES OF\nSHERLOCK HOLMES ***":
    # a long title wraps the marker onto the next line.
    line = last.group()
    if line.count("*") >= 2 and not line.rstrip().endswith("*"):
        nxt = text.find("\n", body + 1)
        following = text[body + 1 : nxt if nxt != -1 else len(text)]
        if following.rstrip().endswith("***") and len(following) < 100:
            body = body + 1 + len(following)
    return last.start(), body, first_end


def strip_gutenberg(text: str) -> Stripped:
    """The body of a PG text; raises `MarkerError` if the markers are missing."""
    marker_start, body_start, end = _start_end(text)
    start_line = " ".join(text[marker_start:body_start].split())
    body = text[body_start : end.start()]
    body, credit = _drop_credit(body)
    return Stripped(body.strip("\n").rstrip() + "\n", start_line, end.group().strip(), credit)


def _drop_credit(body: str) -> tuple[str, bool]:
    """Drop a "Produced by ..." paragraph if it is the first one."""
    stripped = body.lstrip("\n \t")
    if not _CREDIT.match(stripped):
        return body, False
    paragraph_end = re.search(r"\n[ \t]*\n", stripped)
    if paragraph_end is None:
        return "", True  # nothing but the credit
    return stripped[paragraph_end.end() :], True


def has_markers(text: str) -> bool:
    try:
        _start_end(text)
    except MarkerError:
        return False
    return True
