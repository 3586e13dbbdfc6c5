"""What `docker build` would send as its context: .dockerignore read and matched as Docker does.

A port of github.com/moby/patternmatcher (read at commit 5a6d842), which both the classic
builder and BuildKit use; no code was copied:
- ignorefile/ignorefile.go ReadAll: a UTF-8 BOM is dropped; a line starting with `#` is
  a comment; whitespace is trimmed; `!` marks an exception; each pattern is cleaned
  (filepath.Clean) and a leading `/` dropped.
- patternmatcher.go compile/match: `*` and `?` never cross a `/`, `**` matches any number
  of folders (none included), `[...]` is a character class, `\\` escapes; a pattern that
  is a plain string matches exactly, `foo**` is a prefix, a leading `**` a suffix.
- patternmatcher.go MatchesOrParentMatches: a pattern also matches a path when it matches
  one of the path's parent folders; patterns apply in order and the last one that
  matches decides (an exception re-includes).

`context_files` walks a folder as a builder would and lists the files it would send.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_REGEX_SPECIAL = set(".+()|{}$")
EXACT, PREFIX, SUFFIX, REGEX = "exact", "prefix", "suffix", "regex"


def read_patterns(text: str) -> list[str]:
    """ignorefile.ReadAll."""
    patterns = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


def _clean(path: str) -> str:
    """Go's filepath.Clean on a slash-separated path."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the leading `!`
    exclusion: bool
    kind: str
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, pattern: str) -> Pattern:
        """PatternMatcher.New for one pattern, then Pattern.compile."""
        pattern = _clean(pattern.strip())
        exclusion = pattern.startswith("!")
        if exclusion:
            if len(pattern) == 1:
                raise ValueError('illegal exclusion pattern: "!"')
            pattern = pattern[1:]
        regex, kind, i, n = "^", EXACT, 0, len(pattern)
        index = 0  # characters scanned so far, as the Go scanner's loop counter
        while i < n:
            ch = pattern[i]
            i += 1
            if ch == "*":
                if i < n and pattern[i] == "*":
                    i += 1
                    if i < n and pattern[i] == "/":
                        i += 1
                    if i >= n:  # "**" at the end: everything below
                        if kind == EXACT:
                            kind = PREFIX
                        else:
                            regex += ".*"
                            kind = REGEX
                    else:
                        regex += "(.*/)?"
                        kind = REGEX
                    if index == 0:
                        kind = SUFFIX
                else:
                    regex += "[^/]*"
                    kind = REGEX
            elif ch == "?":
                regex += "[^/]"
                kind = REGEX
            elif ch in _REGEX_SPECIAL:
                regex += "\\" + ch
            elif ch == "\\":
                if i < n:
                    regex += "\\" + pattern[i]
                    i += 1
                    kind = REGEX
                else:
                    regex += "\\\\"
            elif ch in "[]":
                regex += ch
                kind = REGEX
            else:
                regex += ch
            index += 1
        compiled = re.compile(regex + "$", re.DOTALL) if kind == REGEX else None
        return cls(pattern, exclusion, kind, compiled)

    def match(self, path: str) -> bool:
        if self.kind == EXACT:
            return path == self.text
        if self.kind == PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind == SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None

    def literal_prefix(self) -> str:
        """The pattern up to its first wildcard: what a re-included path must start with."""
        return re.split(r"[*?\[\\]", self.text, maxsplit=1)[0]


class PatternMatcher:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [Pattern.compile(p) for p in patterns if p.strip()]
        self.exclusions = [p for p in self.patterns if p.exclusion]

    def excluded(self, path: str) -> bool:
        """MatchesOrParentMatches: True when `path` (relative, slash-separated) is left out."""
        path = _clean(path)
        if path == ".":
            return False  # "Don't let them exclude everything"
        parents = posixpath.dirname(path).split("/") if "/" in path else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, folder: str) -> bool:
        """Whether an exception could bring back something under an excluded folder (a
        builder then still walks it)."""
        for pattern in self.exclusions:
            prefix = pattern.literal_prefix()
            if not prefix or prefix.startswith(folder + "/") or (folder + "/").startswith(prefix):
                return True
        return False


def context_files(root: Path, dockerignore: Path | None = None) -> set[str]:
    """Relative paths (slash-separated) of every file and symlink a build of `root` sends."""
    root = Path(root)
    ignore = root / ".dockerignore" if dockerignore is None else dockerignore
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    matcher = PatternMatcher(read_patterns(text))
    sent: set[str] = set()
    for folder, dirs, files in os.walk(root):
        rel_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        kept = []
        for name in dirs:
            rel = prefix + name
            if os.path.islink(os.path.join(folder, name)):
                if not matcher.excluded(rel):
                    sent.add(rel)
            elif not matcher.excluded(rel) or matcher.may_reinclude_below(rel):
                kept.append(name)
        dirs[:] = kept
        for name in files:
            rel = prefix + name
            if not matcher.excluded(rel):
                sent.add(rel)
    return sent
