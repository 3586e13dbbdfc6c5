"""Books from a Project Gutenberg mirror: catalogue, selection, polite download, clean text.

    with GutenbergClient("https://aleph.gutenberg.org/", Path("data/cache/gutenberg")) as pg:
        books = select(pg.catalog(), language="fr", author="Hugo")
        entries = pg.fetch(books, max_bytes=50_000_000)
        documents = list(book_documents(pg.cache_dir, entries))

The mirror may be HTTP(S) or FTP (`ftp://ftp.ibiblio.org/pub/docs/books/gutenberg/`); the
catalogue and the books both come from it, never from www.gutenberg.org, which asks
robots not to crawl it. Books are found in the mirror's classic layout (12345 ->
`1/2/3/4/12345/`, 7 -> `0/7/`), trying `12345-0.zip` (UTF-8), `12345-8.zip` (8-bit),
`12345.zip` (ASCII), then the same as `.txt`; a file the mirror lacks is remembered
(`missing.txt`), so a later run does not ask again.

Everything lives in `cache_dir`:

- `catalog/`: the catalogue files, downloaded once (delete them to refresh);
- `texts/ID.txt`: the clean text (UTF-8, NFC, no PG header or licence);
- `manifest.jsonl`: one `BookEntry` per fetched book; a book in it is never downloaded
  again, so an interrupted fetch resumes where it stopped;
- `failures.jsonl`: books that failed for good (no file on the mirror, no PG markers, a
  broken zip): skipped by later runs; network failures are retried by the next run.

The size budget counts whole books: `fetch` returns books in the order given until the
next one would take the total of clean UTF-8 bytes past `max_bytes`, and stops there.
That book is not truncated (a book is one document of the train/valid split, and half a
novel ends mid-sentence) and later, smaller books are not tried instead, so the result is
always a prefix of the selection and the same budget gives the same corpus.
"""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tqdm import tqdm

from training.corpora.common import Document, append_jsonl, write_atomic
from training.corpora.ftp import PoliteFTP
from training.corpora.gutindex import read_gutindex
from training.corpora.http import Download, FetchError, PoliteClient, Politeness, today
from training.corpora.pg_catalog import Book, read_csv, read_rdf_tar
from training.corpora.pg_text import MarkerError, strip_gutenberg
from training.corpora.text_encoding import decode_bytes

CATALOGS = {
    "csv": "cache/epub/feeds/pg_catalog.csv",
    "rdf": "cache/epub/feeds/rdf-files.tar.bz2",
    "gutindex": "GUTINDEX.ALL",
}
AUTO_ORDER = ("csv", "rdf", "gutindex")  # richest first: only csv and rdf list subjects
# HTTP 404/410 and FTP 550: the file is not on the mirror (not worth asking again).
MISSING_STATUSES = frozenset({404, 410, 550})


@dataclass(frozen=True)
class BookEntry:
    """One fetched book, as recorded in manifest.jsonl."""

    id: int
    title: str
    authors: tuple[str, ...]
    language: str  # the book's languages joined by "; " ("fr", or "en; fr")
    url: str  # the file it was taken from
    encoding: str  # the codec that decoded it ("utf-8", "latin-1", "cp1252", ...)
    fixes: int  # mojibake sequences repaired
    sha256: str  # of the clean text file
    bytes: int  # size of the clean text file (UTF-8)
    fetched: str  # ISO date and time
    path: str  # the clean text, relative to the cache directory

    @classmethod
    def from_json(cls, line: str) -> BookEntry:
        data = json.loads(line)
        data["authors"] = tuple(data["authors"])
        return cls(**data)


class BookFailure(Exception):
    """A book that cannot be fetched; `kind` is "missing", "markers", "zip" or "network"."""

    def __init__(self, kind: str, reason: str, url: str = "") -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.url = url


def book_dir(book_id: int) -> str:
    """The classic mirror layout: 12345 -> "1/2/3/4/12345/", 7 -> "0/7/"."""
    digits = str(book_id)
    parents = list(digits[:-1]) or ["0"]
    return "/".join([*parents, digits]) + "/"


def candidate_files(book_id: int) -> list[str]:
    """Paths to try, best first: UTF-8, then 8-bit, then ASCII; zipped before plain."""
    names = [f"{book_id}-0.zip", f"{book_id}-8.zip", f"{book_id}.zip"]
    names += [f"{book_id}-0.txt", f"{book_id}-8.txt", f"{book_id}.txt"]
    return [book_dir(book_id) + name for name in names]


def _text_from_zip(data: bytes, book_id: int) -> bytes:
    """The one .txt in the zip (maybe inside a folder); other members are ignored."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        texts = [
            info
            for info in zf.infolist()
            if not info.is_dir()
            and info.filename.lower().endswith(".txt")
            and not info.filename.startswith("__MACOSX/")
        ]
        if not texts:
            raise BookFailure("zip", "no .txt member in the zip")
        # Should a zip hold several, the one named after the book is the book.
        named = [t for t in texts if PurePosixPath(t.filename).name.startswith(str(book_id))]
        best = max(named or texts, key=lambda info: info.file_size)
        return zf.read(best)


class GutenbergClient:
    """Catalogue and books from one PG mirror, cached in `cache_dir` (see module docstring)."""

    def __init__(self, mirror: str, cache_dir: Path, politeness: Politeness | None = None) -> None:
        scheme = urlsplit(mirror).scheme
        if scheme not in ("http", "https", "ftp"):
            raise ValueError(f"mirror must be an http(s):// or ftp:// URL, not {mirror!r}")
        self.mirror = mirror.rstrip("/") + "/"
        self.cache_dir = cache_dir
        self.politeness = politeness or Politeness()
        self._http: PoliteClient | None = None
        self._ftp: PoliteFTP | None = None
        if scheme == "ftp":
            self._ftp = PoliteFTP(self.politeness)
        else:
            self._http = PoliteClient(self.politeness, robots_cache=cache_dir / "robots.json")
        self._missing_path = cache_dir / "missing.txt"
        self._missing = (
            set(self._missing_path.read_text(encoding="utf-8").split())
            if self._missing_path.exists()
            else set()
        )

    def __enter__(self) -> GutenbergClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._ftp is not None:
            self._ftp.close()

    # -- transport --------------------------------------------------------------------------

    def _download(self, rel: str, dest: Path) -> Download:
        url = self.mirror + rel
        if self._ftp is not None:
            return self._ftp.download(url, dest)
        assert self._http is not None
        return self._http.download(url, dest)

    def _remember_missing(self, rel: str) -> None:
        self._missing.add(rel)
        self._missing_path.parent.mkdir(parents=True, exist_ok=True)
        with self._missing_path.open("a", encoding="utf-8") as fh:
            fh.write(rel + "\n")

    # -- catalogue --------------------------------------------------------------------------

    def catalog(self, source: str = "auto") -> list[Book]:
        """The mirror's catalogue: "csv", "rdf", "gutindex", or "auto" (the first it has)."""
        if source != "auto" and source not in CATALOGS:
            choices = ", ".join(["auto", *CATALOGS])
            raise ValueError(f"unknown catalogue {source!r}: choose from {choices}")
        order = AUTO_ORDER if source == "auto" else (source,)
        errors: list[str] = []
        for name in order:
            rel = CATALOGS[name]
            path = self.cache_dir / "catalog" / PurePosixPath(rel).name
            if not path.exists():
                try:
                    self._download(rel, path)
                except FetchError as exc:
                    if source != "auto" or exc.status not in MISSING_STATUSES:
                        raise
                    errors.append(f"{name}: {exc.reason}")
                    continue
            if name == "csv":
                return read_csv(path)
            if name == "rdf":
                return read_rdf_tar(path)
            return read_gutindex(path)
        raise FetchError(self.mirror, "no catalogue on this mirror (" + "; ".join(errors) + ")")

    # -- books ------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.cache_dir / "manifest.jsonl"

    @property
    def failures_path(self) -> Path:
        return self.cache_dir / "failures.jsonl"

    def manifest(self) -> dict[int, BookEntry]:
        """Books already fetched whose clean text is still on disk."""
        entries: dict[int, BookEntry] = {}
        if not self.manifest_path.exists():
            return entries
        for line in self.manifest_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entry = BookEntry.from_json(line)
            except (ValueError, TypeError, KeyError):
                continue  # a line cut short by a crash while appending
            text = self.cache_dir / entry.path
            if text.exists() and text.stat().st_size == entry.bytes:
                entries[entry.id] = entry
        return entries

    def failures(self) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        if self.failures_path.exists():
            for line in self.failures_path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    out[int(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    continue
        return out

    def fetch(
        self, books: Sequence[Book], max_bytes: int, *, progress: bool = True
    ) -> list[BookEntry]:
        """Fetch `books` in order until the clean text reaches `max_bytes` (whole books)."""
        done = self.manifest()
        failed = {i for i, r in self.failures().items() if r.get("kind") != "network"}
        out: list[BookEntry] = []
        total = 0
        bar = tqdm(
            total=max_bytes, unit="B", unit_scale=True, desc="gutenberg", disable=not progress
        )
        try:
            for book in books:
                if total >= max_bytes:
                    break
                entry = done.get(book.id)
                if entry is None:
                    if book.id in failed:
                        continue
                    bar.set_postfix_str(f"#{book.id}")
                    try:
                        entry = self._fetch_one(book)
                    except BookFailure as exc:
                        self._record_failure(book, exc)
                        continue
                    append_jsonl(self.manifest_path, asdict(entry))
                    done[book.id] = entry
                if total + entry.bytes > max_bytes:
                    break  # whole books only: this one would cross the budget
                out.append(entry)
                total += entry.bytes
                bar.update(entry.bytes)
        finally:
            bar.close()
        return out

    def _fetch_one(self, book: Book) -> BookEntry:
        candidates = candidate_files(book.id)
        # The RDF lists a book's files: where it names some of ours, only those are asked for.
        listed = {PurePosixPath(urlsplit(f).path).name for f in book.formats}
        known = [c for c in candidates if PurePosixPath(c).name in listed]
        for rel in known or candidates:
            if rel in self._missing:
                continue
            dest = self.cache_dir / "downloads" / PurePosixPath(rel).name
            if dest.exists():
                # Complete (downloads are renamed from .part when whole): a run interrupted
                # before it processed the file. Use it rather than download it again.
                download = Download(dest, self.mirror + rel, dest.stat().st_size, resumed=True)
            else:
                try:
                    download = self._download(rel, dest)
                except FetchError as exc:
                    if exc.status in MISSING_STATUSES:
                        self._remember_missing(rel)
                        continue
                    raise BookFailure("network", exc.reason, exc.url) from exc
            try:
                entry = self._process(book, download)
            except BookFailure:
                dest.unlink(missing_ok=True)  # recorded as failed for good: not needed again
                raise
            # Kept only until its clean text is saved; an interruption before that keeps it.
            dest.unlink(missing_ok=True)
            return entry
        raise BookFailure("missing", "no text file of this book on the mirror")

    def _process(self, book: Book, download: Download) -> BookEntry:
        raw = download.path.read_bytes()
        if download.path.suffix == ".zip":
            try:
                raw = _text_from_zip(raw, book.id)
            except zipfile.BadZipFile as exc:
                raise BookFailure("zip", f"bad zip: {exc}", download.url) from exc
        decoded = decode_bytes(raw)
        try:
            stripped = strip_gutenberg(decoded.text)
        except MarkerError as exc:
            raise BookFailure("markers", str(exc), download.url) from exc
        # NFC: older files spell "é" as "e" + combining accent; one spelling per letter.
        data = unicodedata.normalize("NFC", stripped.text).encode("utf-8")
        rel = f"texts/{book.id}.txt"
        # Written before its manifest line, which therefore never points at half a file.
        write_atomic(self.cache_dir / rel, data)
        return BookEntry(
            id=book.id,
            title=book.title,
            authors=book.authors,
            language="; ".join(book.languages),
            url=download.url,
            encoding=decoded.encoding,
            fixes=decoded.fixes,
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            fetched=today(),
            path=rel,
        )

    def _record_failure(self, book: Book, exc: BookFailure) -> None:
        record = {
            "id": book.id,
            "title": book.title,
            "kind": exc.kind,
            "reason": exc.reason,
            "url": exc.url,
            "date": today(),
        }
        append_jsonl(self.failures_path, record)


def book_documents(cache_dir: Path, entries: Iterable[BookEntry]) -> Iterator[Document]:
    """One `Document` per fetched book, titled "Title (id)" (titles alone are not unique)."""
    for entry in entries:
        text = (cache_dir / entry.path).read_text(encoding="utf-8")
        yield Document(title=f"{entry.title} ({entry.id})", text=text)
