"""What every corpus builder shares: documents, cleaning, the split by document, the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from talkative_common.text import CORPUS_FOLDS

_FOLD = str.maketrans(CORPUS_FOLDS)
_SPACES = re.compile(r"[ \t]+")


def clean_text(text: str) -> str:
    """NFC-normalise, fold typographic quotes and dashes, collapse runs of spaces."""
    text = unicodedata.normalize("NFC", text).translate(_FOLD)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(lines)


@dataclass(frozen=True)
class Document:
    """One unit of the split: a book of the Bible, a novel, a screenplay."""

    title: str
    text: str


@dataclass
class CorpusManifest:
    name: str
    language: str
    source: str
    licence: str
    split_rule: str
    files: dict[str, dict[str, object]] = field(default_factory=dict)
    documents: dict[str, list[str]] = field(default_factory=dict)
    # Crawled corpora: where each document came from, and what the builder left out and why.
    sources: dict[str, dict[str, object]] = field(default_factory=dict)
    dropped: list[dict[str, object]] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if v or k not in ("sources", "dropped")}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def every_nth(documents: Sequence[Document], n: int) -> set[str]:
    """Titles of documents n, 2n, 3n... (1-based): a fixed held-out set spread over the canon."""
    return {doc.title for i, doc in enumerate(documents, start=1) if i % n == 0}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename: a crash never leaves half a file under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def append_jsonl(path: Path, record: Mapping[str, object]) -> None:
    """Append one JSON line and push it to disk: a crash loses at most the record in flight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_corpus(
    documents: Iterable[Document],
    out_dir: Path,
    *,
    held_out: set[str],
    manifest: CorpusManifest,
    total: int | None = None,
    progress: bool = True,
) -> CorpusManifest:
    """Write train.txt / valid.txt (whole documents, blank line between) and manifest.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[str]] = {"train": [], "valid": []}
    titles: dict[str, list[str]] = {"train": [], "valid": []}
    bar = tqdm(
        documents,
        total=total,
        desc=f"{manifest.name}: write",
        unit="doc",
        disable=not progress,
    )
    for doc in bar:
        split = "valid" if doc.title in held_out else "train"
        parts[split].append(clean_text(doc.text).strip("\n"))
        titles[split].append(doc.title)
    missing = held_out - set(titles["valid"])
    if missing:
        raise ValueError(f"held-out documents not found in the source: {sorted(missing)}")
    for split, texts in parts.items():
        path = out_dir / f"{split}.txt"
        path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
        content = path.read_text(encoding="utf-8")
        manifest.files[f"{split}.txt"] = {
            "bytes": path.stat().st_size,
            "chars": len(content),
            "documents": len(texts),
            "sha256": sha256_file(path),
        }
    manifest.documents = titles
    (out_dir / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest
