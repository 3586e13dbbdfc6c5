"""Bytes of a Project Gutenberg text -> str, with a record of how it was decoded.

PG files come in every encoding of the last fifty years: UTF-8 (with or without a BOM),
Latin-1, Windows-1252 labelled as Latin-1, plain ASCII that is not quite ASCII, and UTF-8
that some tool once read as Windows-1252 and saved again as UTF-8 ("Ã©tÃ©" for "été").
The order of the checks is what makes the result reliable:

1. a BOM is believed (it cannot appear by accident);
2. strict UTF-8: an 8-bit text that happens to decode as UTF-8 is vanishingly rare;
3. the header's own "Character set encoding:" line is a hint that is *verified* (the
   bytes must decode, and an 8-bit decoding must look like text), never trusted blindly;
4. Latin-1 against Windows-1252: they differ only on bytes 0x80-0x9F, which are curly
   quotes and dashes in CP1252 but invisible control characters in Latin-1; when such
   bytes occur the file is CP1252, whatever its header says;
5. charset-normalizer for anything else (Cyrillic, Central European, ...);
6. then mojibake repair by ftfy, only where it is unambiguous (see `repair_mojibake`).
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from dataclasses import dataclass

import ftfy

_DECLARED = re.compile(rb"Character set encoding:[ \t]*([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
# Names the header uses for the 8-bit Western encodings, which we tell apart ourselves.
_WESTERN = {
    "latin-1",
    "latin1",
    "iso-8859-1",
    "iso8859-1",
    "iso-latin-1",
    "cp1252",
    "windows-1252",
    "ascii",
    "us-ascii",
}
_C1 = re.compile(rb"[\x80-\x9f]")

# The sloppy CP1252 that ftfy registers: CP1252, with the five bytes it leaves undefined
# (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as their Latin-1 controls, as the tools that made
# the mojibake did. It gives the characters each byte 0x80-0xFF turns into.
_SLOPPY = "sloppy-windows-1252"


def _chars_for(lo: int, hi: int) -> str:
    chars = bytes(range(lo, hi + 1)).decode(_SLOPPY)
    return re.escape("".join(c for c in chars if ord(c) > 0x7F))


# A UTF-8 lead byte followed by the right number of continuation bytes, all as CP1252 text.
_CONT = _chars_for(0x80, 0xBF)
_MOJIBAKE = re.compile(
    f"[{_chars_for(0xC2, 0xDF)}][{_CONT}]"
    f"|[{_chars_for(0xE0, 0xEF)}][{_CONT}]{{2}}"
    f"|[{_chars_for(0xF0, 0xF4)}][{_CONT}]{{3}}"
)
# ftfy does the repair, encoding fixes only: the other fixes of ftfy.fix_text (quotes,
# ligatures, HTML entities, widths, normalisation) would change correct text.
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    replace_lossy_sequences=False,
    fix_c1_controls=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
)


@dataclass(frozen=True)
class Decoded:
    """The text and what was done to get it (goes into the manifest)."""

    text: str
    encoding: str  # the codec that decoded the bytes: "utf-8", "utf-8-sig", "cp1252", ...
    declared: str | None  # what the PG header claimed, if anything
    fixes: int  # mojibake sequences repaired
    method: str  # "bom", "utf-8", "declared", "c1-bytes", "latin-1", "detected", "fallback"


def declared_encoding(data: bytes) -> str | None:
    """The "Character set encoding: X" of a PG header (first 8 KB), lower-cased."""
    match = _DECLARED.search(data[:8192])
    return match.group(1).decode("ascii").lower() if match else None


def _looks_like_text(text: str) -> bool:
    """Do the non-ASCII characters of an 8-bit decoding read as letters and punctuation?

    Latin-1 decodes anything; a Cyrillic or CP437 file read as Latin-1 turns into a
    soup of symbols (±, ¤, ¦...) rather than accented letters.
    """
    high = [c for c in text if ord(c) > 0x7F]
    if not high:
        return True
    good = sum(
        1
        for c in high
        if c.isalpha() or unicodedata.category(c) in ("Pi", "Pf", "Pd", "Po", "Zs", "Sc")
    )
    letters = sum(1 for c in text if c.isalpha())
    # Western languages write mostly ASCII letters (French ~4% accented, Icelandic ~15%):
    # a text whose letters are nearly all high bytes is another script read as Latin-1.
    # (A line or two of French can be half accents: too short to judge by this ratio.)
    mostly_ascii = letters < 50 or len(high) <= 0.5 * letters
    return good / len(high) >= 0.8 and mostly_ascii


def _western(data: bytes) -> tuple[str, str] | None:
    """Latin-1 or CP1252, whichever fits; None if neither reads as text."""
    if _C1.search(data):
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            return None  # a byte CP1252 leaves undefined: not a Western 8-bit text
        return (text, "cp1252") if _looks_like_text(text) else None
    text = data.decode("latin-1")
    return (text, "latin-1") if _looks_like_text(text) else None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_bytes(data: bytes, *, repair: bool = True) -> Decoded:
    """Decode a PG text file; see the module docstring for the order of the checks."""
    declared = declared_encoding(data)
    text, encoding, method = _decode(data, declared)
    text = _normalise_newlines(text)
    fixes = 0
    if repair:
        text, fixes = repair_mojibake(text)
    return Decoded(text, encoding, declared, fixes, method)


def _decode(data: bytes, declared: str | None) -> tuple[str, str, str]:
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts the same way
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec, "bom"
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), "utf-8", "utf-8"
    except UnicodeDecodeError:
        pass
    if declared is None or declared in _WESTERN or declared.startswith("utf"):
        # No hint, a Western hint, or a UTF-8 claim the bytes just disproved.
        found = _western(data)
        if found is not None:
            text, codec = found
            return text, codec, "c1-bytes" if codec == "cp1252" else "latin-1"
    else:
        try:
            codec = codecs.lookup(declared).name
            text = data.decode(codec)
            if _looks_like_text(text):
                return text, codec, "declared"
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown name or a wrong claim: detect instead
    from charset_normalizer import from_bytes  # imported late: only odd files need it

    best = from_bytes(data).best()
    if best is not None:
        return str(best), best.encoding, "detected"
    return data.decode("cp1252", errors="replace"), "cp1252", "fallback"


def _unmojibake(seq: str) -> str | None:
    """'Ã©' -> 'é' when the CP1252 bytes of `seq` are one valid UTF-8 character."""
    try:
        char = seq.encode(_SLOPPY).decode("utf-8")
    except UnicodeError:
        return None
    return char if _plausible(char) else None


def _plausible(char: str) -> bool:
    """Characters a Western, Greek or Cyrillic book contains; IPA or CJK from a pair of
    Latin-1 letters ("É»" would be U+027B) means the pair was never mojibake."""
    cp = ord(char)
    return (
        0xA0 <= cp <= 0x24F  # Latin-1 supplement, Latin Extended-A and -B
        or 0x370 <= cp <= 0x4FF  # Greek, Cyrillic
        or 0x2010 <= cp <= 0x203A  # dashes, quotes, ellipsis, daggers
        or cp in (0x20AC, 0x2122)  # €, ™
    )


def count_mojibake(text: str) -> int:
    """How many sequences in `text` read as UTF-8-decoded-as-CP1252."""
    return sum(1 for m in _MOJIBAKE.finditer(text) if _unmojibake(m.group()) is not None)


def _mangled(line: str) -> int:
    """The repairable sequences of `line` if the line as a whole looks mangled, else 0.

    Each sequence must be exactly one valid UTF-8 character of a plausible script, and the
    case must agree with the word it sits in (in "IRMÃ»" the "Ã»" follows a capital, so it
    is a Portuguese word and a closing guillemet, not a mangled "û"); and repairable
    sequences have to outnumber the "Ã" and "Â" that start none (legitimate Portuguese
    "SÃO", "NÃO").
    """
    candidates = [m for m in _MOJIBAKE.finditer(line) if _repairable(line, m)]
    if not candidates:
        return 0
    starts = {m.start() for m in candidates}
    lone = sum(1 for i, c in enumerate(line) if c in "ÃÂ" and i not in starts)
    return len(candidates) if len(candidates) > lone else 0


def repair_mojibake(text: str, max_passes: int = 3) -> tuple[str, int]:
    """Undo UTF-8 read as CP1252/Latin-1 (also twice over); returns (text, sequences fixed).

    ftfy repairs (its sloppy codecs, several layers, lines mangled only in part), line by
    line; this module decides where, because ftfy alone also "repairs" correct Portuguese
    ("«IRMÃ»" -> "«IRMû"). A line is repaired only when it looks mangled (`_mangled`), and
    a repair is kept only if it leaves fewer mojibake sequences, or the line stays as it
    was. The count is of the sequences found before each pass.
    """
    total = 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        for _ in range(max_passes):
            found = _mangled(line)
            if not found:
                break
            before = count_mojibake(line)
            fixed = ftfy.fix_encoding(line, _FTFY)
            if count_mojibake(fixed) >= before:
                # ftfy wants more evidence than a short line holds ("Ã…se"); the checks of
                # `_mangled` have found it, so decode the sequences they accept one by one.
                fixed = _MOJIBAKE.sub(functools.partial(_fixed, line), line)
                if count_mojibake(fixed) >= before:
                    break
            line = fixed
            total += found
        lines[i] = line
    return "".join(lines), total


def _fixed(text: str, m: re.Match[str]) -> str:
    """The character a sequence stands for, if it is `_repairable`, else the sequence."""
    fixed = _unmojibake(m.group())
    return fixed if fixed is not None and _repairable(text, m) else m.group()


def _repairable(text: str, m: re.Match[str]) -> bool:
    fixed = _unmojibake(m.group())
    if fixed is None:
        return False
    before = text[m.start() - 1] if m.start() > 0 else ""
    after = text[m.end()] if m.end() < len(text) else ""
    if not (fixed.isalpha() and fixed.islower() and before.isupper()) or after.isalpha():
        return True
    # A lower-case letter glued to the end of a capitalised word ("IRMÃ»" + space) is a real
    # upper-case word followed by a symbol, unless more mojibake follows ("LÃ¢â‚¬â„¢").
    nxt = _MOJIBAKE.match(text, m.end())
    return nxt is not None and _unmojibake(nxt.group()) is not None
