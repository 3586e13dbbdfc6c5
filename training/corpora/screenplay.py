"""Screenplays as IMSDb serves them: the `<pre>` of a script page -> typed elements -> plain text.

An IMSDb script is a typewritten page pasted into `<pre>`: `<b>` around scene headings and
character cues, HTML entities, layout by leading spaces (sometimes tabs, sometimes `\\r\\n`),
and the page furniture of a shooting script: page numbers ("12." or "- 12 -" alone on a
line), "(CONTINUED)" / "CONTINUED:" at page breaks, "(MORE)" at the foot of a page inside a
speech, scene numbers on both sides of a heading.

`parse_screenplay` reads that text into `Element`s (scene_heading, action, character,
parenthetical, dialogue, transition), each with the 1-based line of the `<pre>` text where
it starts. Columns differ from script to script, so it measures the document's own:
the indentation most cues sit at, the one the lines after a cue sit at (dialogue), the one
action paragraphs start at. Bold says "heading or cue" where the page has it; patterns
(INT./EXT., "CUT TO:", a line in capitals directly followed by text) decide where it has not.
Page numbers, CONTINUED markers, (MORE) and scene numbers are dropped; a speech broken by a
page ("(MORE)" ... "JOHN (CONT'D)") comes back as one speech.

`to_plain_text` writes the training text. Layout, one block per paragraph, blocks separated
by one blank line, no indentation, no HTML:

    INT. KITCHEN - NIGHT            scene heading, as written (capitals), no scene numbers

    Rain on the window.             action: each paragraph on one line

    MARTHA (V.O.)                   speech block: the cue in capitals, with V.O./O.S./...
    (quietly)                       but without CONT'D; each parenthetical and each run of
    The kettle's on.                dialogue on its own line, no blank line inside the block

    CUT TO:                         transition

The text ends with a single newline.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

KINDS = ("scene_heading", "action", "character", "parenthetical", "dialogue", "transition")


@dataclass(frozen=True)
class Element:
    kind: str  # one of KINDS
    text: str  # whitespace collapsed, entities decoded; a cue's name without extensions
    line: int  # 1-based line of the <pre> text where the element starts
    extension: str = ""  # cues only: "V.O.", "O.S.", "CONT'D", several joined by ", "


# -- the <pre> of a script page -------------------------------------------------------------


class _PreFinder(HTMLParser):
    """Offsets of the outermost <pre> elements (IMSDb pages sometimes nest them)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=False)
        # getpos() gives (line, column) with lines counted by "\n": map them to offsets.
        self._line_starts = [0]
        for i, ch in enumerate(page):
            if ch == "\n":
                self._line_starts.append(i + 1)
        self.spans: list[tuple[int, int]] = []
        self._depth = 0
        self._start = 0

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "pre":
            return
        if self._depth == 0:
            self._start = self._offset() + len(self.get_starttag_text() or "")
        self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag != "pre" or self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self.spans.append((self._start, self._offset()))

    def finish(self, length: int) -> None:
        self.close()
        if self._depth > 0:  # never closed: the script runs to the end of the page
            self.spans.append((self._start, length))


def extract_pre(page: str) -> str:
    """The raw inner HTML of the biggest outermost `<pre>` of a page ("" if it has none).

    Markup and entities are kept (the parser needs the `<b>`s). As in HTML, one newline
    right after `<pre>` is not part of the content, so line 1 is the script's first line.
    """
    finder = _PreFinder(page)
    finder.feed(page)
    finder.finish(len(page))
    if not finder.spans:
        return ""
    start, end = max(finder.spans, key=lambda span: span[1] - span[0])
    content = page[start:end]
    for newline in ("\r\n", "\n", "\r"):
        if content.startswith(newline):
            return content[len(newline) :]
    return content


# -- lines ----------------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)\b[^>]*>")
_BOLD_TAGS = frozenset({"b", "strong"})
_TAB = 8


@dataclass(frozen=True)
class _Line:
    no: int
    indent: int
    text: str  # stripped
    bold: bool  # every visible character is inside <b>


_NEWLINE = re.compile(r"\r\n|\r|\n")
# Markup whose content is not part of the page text (IMSDb nests a whole <html><head> in <pre>).
_HIDDEN = re.compile(r"<(head|title|script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _hide(match: re.Match[str]) -> str:
    return "\n" * len(_NEWLINE.findall(match[0]))  # keep the line numbers


def _lines(pre: str) -> list[_Line]:
    """Split the <pre> text into lines: tags out, entities decoded, tabs expanded, bold noted."""
    out: list[_Line] = []
    pre = _HIDDEN.sub(_hide, pre)
    bold = False  # <b> may open on one line and close on another
    for no, raw in enumerate(_NEWLINE.split(pre), start=1):
        chars: list[tuple[str, bool]] = []
        pos = 0
        for tag in _TAG.finditer(raw):
            chars.extend((c, bold) for c in html.unescape(raw[pos : tag.start()]))
            if tag[2].lower() in _BOLD_TAGS:
                bold = not tag[1]
            pos = tag.end()
        chars.extend((c, bold) for c in html.unescape(raw[pos:]))
        # Expand tabs by hand so each column keeps its bold flag.
        cols: list[tuple[str, bool]] = []
        for c, b in chars:
            if c == "\t":
                cols.extend([(" ", b)] * (_TAB - len(cols) % _TAB))
            elif c in "\xa0\u202f\f\v":
                cols.append((" ", b))
            else:
                cols.append((c, b))
        text = "".join(c for c, _ in cols)
        stripped = text.strip()
        indent = len(text) - len(text.lstrip())
        visible = [b for c, b in cols if not c.isspace()]
        out.append(_Line(no, indent, stripped, bool(visible) and all(visible)))
    return out


# -- patterns -------------------------------------------------------------------------------

_SCENE_NO = r"\d+[A-Z]{0,2}\.?"
_HEADING = re.compile(
    r"^(?:(?P<no>\d+[A-Z]{0,2})\.?\s+)?"
    r"(?P<text>(?:INT|EXT|INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|INT\.?-EXT|I\s*/\s*E|INTERIOR|EXTERIOR)"
    r"(?:[.:\s].*)?)$"
)
_NUMBERED = re.compile(r"^(?P<pre>\d+[A-Z]{0,2})\.?\s+(?P<text>.*?)\s+(?P<post>\d+[A-Z]{0,2})\.?$")
_TRANSITION = re.compile(
    r"^(?:[A-Z][A-Z ]*\sTO:|(?:FADE|CUT|SMASH CUT|DISSOLVE) TO BLACK[.:]?"
    r"|FADE (?:IN|OUT|UP)[.:]?|IRIS (?:IN|OUT)[.:]?|CUT TO[.:]?)$"
)
_FURNITURE = re.compile(
    r"^(?:-?\s*\d+[A-Z]?\.?\s*-?"  # page numbers: "12." "- 12 -" "12"
    r"|(?:page|pg\.?)\s*\d+\.?"
    r"|\(MORE\)"
    r"|(?:" + _SCENE_NO + r"\s+)?\(?CONTINUED\)?:?(?:\s*\(\d+\))?(?:\s+" + _SCENE_NO + r")?"
    r"|(?:" + _SCENE_NO + r"\s+)?OMITTED(?:\s+" + _SCENE_NO + r")?)$",
    re.IGNORECASE,
)
_MORE = re.compile(r"^\(MORE\)$", re.IGNORECASE)
# A cue: a name in capitals (letters, digits, a few marks) and extensions in parentheses.
_CUE = re.compile(
    r"^(?P<name>[A-Z0-9][A-Z0-9 .'’\-&#/]*?[A-Z0-9.'’]?)\s*(?P<ext>(?:\s*\([^()]*\))*)$"
)
_EXT = re.compile(r"\(([^()]*)\)")
_CONTD = re.compile(r"^CONT[’']?D\.?$|^CONTINUING$|^CONT\.?$", re.IGNORECASE)
_MAX_CUE = 45


def _heading_text(text: str) -> str | None:
    """The heading without scene numbers, when the line is an INT./EXT. heading."""
    match = _HEADING.match(text)
    if match is None:
        return None
    heading = match["text"].strip()
    if match["no"]:
        # The number is repeated at the right margin; a lone number on the right is not
        # stripped ("EXT. HIGHWAY 66" is a place).
        heading = re.sub(r"\s+" + re.escape(match["no"]) + r"\.?$", "", heading)
    return heading


def _strip_scene_numbers(text: str) -> str:
    match = _NUMBERED.match(text)
    return match["text"] if match and match["pre"] == match["post"] else text


def _cue(text: str) -> tuple[str, str] | None:
    """(name, extension) when the line looks like a character cue."""
    if len(text) > _MAX_CUE or text != text.upper() or not re.search(r"[A-Z]", text):
        return None
    match = _CUE.match(text)
    if not match or not re.search(r"[A-Z]", match["name"]):
        return None
    exts = [e.strip() for e in _EXT.findall(match["ext"])]
    exts = ["CONT'D" if _CONTD.match(e) else e.replace("’", "'") for e in exts]
    return match["name"].strip(), ", ".join(exts)


def _collapse(text: str) -> str:
    return " ".join(text.split())


# -- columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    action: int
    cue: int
    dialogue: int

    def nearest(self, indent: int) -> str:
        """'action', 'dialogue' or 'cue': the measured column this indentation is closest to."""
        options = [("action", self.action), ("dialogue", self.dialogue), ("cue", self.cue)]
        return min(options, key=lambda o: (abs(indent - o[1]), o[0] != "action"))[0]

    @property
    def flat(self) -> bool:
        """No usable indentation (everything flush left): only the patterns are left."""
        return self.dialogue <= self.action


def _mode(values: Iterable[int], default: int) -> int:
    counts = Counter(values).most_common()
    if not counts:
        return default
    best = counts[0][1]
    return min(v for v, n in counts if n == best)  # ties: the leftmost


def _measure(lines: Sequence[_Line], furniture: Sequence[bool]) -> _Columns:
    """The columns this document uses, from the lines whose role is plain without them."""

    def text_at(i: int) -> bool:
        return 0 <= i < len(lines) and bool(lines[i].text) and not furniture[i]

    content = [i for i in range(len(lines)) if text_at(i)]
    special = {
        i for i in content if _heading_text(lines[i].text) or _TRANSITION.match(lines[i].text)
    }
    # A cue: capitals, not a heading or a transition, directly followed by more text.
    cues = [i for i in content if i not in special and text_at(i + 1) and _cue(lines[i].text)]
    if any(lines[i].bold for i in cues):  # a page with bold cues: trust them only
        cues = [i for i in cues if lines[i].bold]
    # Action: where paragraphs start (after a blank line), other than cues and headings;
    # dialogue lines follow a cue or another dialogue line, so they do not count here.
    starts = [
        lines[i].indent
        for i in content
        if not text_at(i - 1)
        and i not in special
        and i not in cues
        and not lines[i].text.startswith("(")
    ]
    action = _mode(starts, min((lines[i].indent for i in content), default=0))
    # Capitals in action ("BANG!") also pass the cue test; true cues sit deeper than action.
    deeper = [i for i in cues if lines[i].indent > action + 2]
    cue = _mode((lines[i].indent for i in deeper), action)
    after = [
        lines[i + 1].indent
        for i in deeper
        if abs(lines[i].indent - cue) <= 2 and not lines[i + 1].text.startswith("(")
    ]
    dialogue = _mode(after, action)
    return _Columns(action, cue, dialogue)


# -- the parser -----------------------------------------------------------------------------


def parse_screenplay(pre: str) -> list[Element]:
    """Elements of a screenplay, from the content of its `<pre>` (see the module docstring)."""
    lines = _lines(pre)
    furniture = [bool(ln.text) and bool(_FURNITURE.match(ln.text)) for ln in lines]
    cols = _measure(lines, furniture)

    elements: list[Element] = []
    texts: list[list[str]] = []  # the lines of each element, joined at the end
    speaker = ""  # the name of the current speech's cue
    in_speech = False  # the previous content line belongs to a speech, no blank line since
    open_paren = False  # a parenthetical whose ")" has not come yet
    joined = False  # the previous content line and this one are adjacent (no blank, no furniture)
    more = False  # "(MORE)" seen: a "NAME (CONT'D)" cue after the page break continues the speech
    merge_dialogue = False

    def emit(kind: str, text: str, line: int, extension: str = "") -> None:
        elements.append(Element(kind, text, line, extension))
        texts.append([text])

    for i, ln in enumerate(lines):
        if not ln.text:
            joined = in_speech = open_paren = False
            continue
        if furniture[i]:
            if _MORE.match(ln.text) and in_speech:
                more = True
            joined = False
            in_speech = in_speech and more  # the speech goes on over the page break
            continue
        prev = elements[-1] if elements else None
        adjacent = joined
        joined = True
        if open_paren and prev is not None:
            texts[-1].append(ln.text)
            open_paren = ")" not in ln.text
            continue

        heading = _heading_text(ln.text)
        if heading is not None:
            emit("scene_heading", _strip_scene_numbers(heading), ln.no)
            in_speech = more = False
            continue
        if _TRANSITION.match(ln.text):
            emit("transition", ln.text, ln.no)
            in_speech = more = False
            continue

        nxt = lines[i + 1] if i + 1 < len(lines) else None
        followed = nxt is not None and bool(nxt.text) and not furniture[i + 1]
        column = cols.nearest(ln.indent)
        cue = _cue(ln.text)
        if cue is not None and (not (adjacent and in_speech) or ln.bold or more):
            if cols.flat:
                is_cue = followed or ln.bold
            elif ln.bold:
                is_cue = column != "action" and followed  # a bold title is not a cue
            else:
                is_cue = column == "cue" and followed
            if is_cue:
                name, ext = cue
                if more and name == speaker and "CONT'D" in ext:
                    merge_dialogue = True  # the same speech after a page break
                else:
                    emit("character", name, ln.no, ext)
                    merge_dialogue = False
                speaker, in_speech, more = name, True, False
                continue
        if ln.bold and not cols.flat and column == "action" and not in_speech:
            # IMSDb bolds sluglines that are not INT./EXT. ("LATER", "THE ROOFTOP").
            emit("scene_heading", _strip_scene_numbers(ln.text), ln.no)
            more = False
            continue

        if (in_speech or more) and (cols.flat or column != "action" or ln.text.startswith("(")):
            if ln.text.startswith("("):
                emit("parenthetical", ln.text, ln.no)
                open_paren = ")" not in ln.text
                merge_dialogue = False
            elif (
                prev is not None
                and prev.kind == "dialogue"
                and (adjacent or merge_dialogue or more)
            ):
                texts[-1].append(ln.text)
                merge_dialogue = False
            else:
                emit("dialogue", ln.text, ln.no)
            in_speech, more = True, False
            continue

        in_speech = more = merge_dialogue = False
        if prev is not None and prev.kind == "action" and adjacent:
            texts[-1].append(ln.text)
        else:
            emit("action", ln.text, ln.no)

    # Wrapped lines are joined into one paragraph (a cue is always one line).
    return [
        e if e.kind == "character" else Element(e.kind, _collapse(" ".join(t)), e.line)
        for e, t in zip(elements, texts, strict=True)
    ]


def parse_page(page: str) -> list[Element]:
    """Elements of the screenplay in a whole script page (its biggest `<pre>`)."""
    return parse_screenplay(extract_pre(page))


# -- plain text -----------------------------------------------------------------------------

_SPEECH = frozenset({"character", "parenthetical", "dialogue"})


def cue_line(element: Element) -> str:
    """'NAME (V.O.)': the cue as the plain text shows it (CONT'D is page furniture there)."""
    exts = [e for e in element.extension.split(", ") if e and e != "CONT'D"]
    return " ".join([element.text, *(f"({e})" for e in exts)])


def to_plain_text(elements: Iterable[Element]) -> str:
    """The training text of a screenplay (layout in the module docstring)."""
    blocks: list[list[str]] = []
    prev_kind = ""
    for e in elements:
        line = cue_line(e) if e.kind == "character" else e.text
        if e.kind in _SPEECH and e.kind != "character" and prev_kind in _SPEECH:
            blocks[-1].append(line)  # inside a speech: no blank line
        else:
            blocks.append([line])
        prev_kind = e.kind
    return "\n\n".join("\n".join(b) for b in blocks) + "\n" if blocks else ""
