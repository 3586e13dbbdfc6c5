"""Film scripts from an IMSDb-shaped site: genre page -> film pages -> script pages.

The site's shape: `{site}/genre/{Genre}` lists films as links to `/Movie Scripts/X Script.html`;
a film page links to its script as `/scripts/X.html` (or has no script: a PDF only, "not
available"); the script page holds the screenplay in `<pre>` (see `screenplay.py`).

Every request goes through `PoliteClient` (robots.txt, one request per second, retries).
Everything fetched is cached under `cache_dir`, so a crawl that is interrupted and run again
fetches nothing twice, and a later run with a bigger limit fetches only the new scripts:

    cache_dir/
      robots.json            robots.txt per host (PoliteClient's cache)
      pages/genre/*.html     genre listings (refetched only with refresh=True)
      pages/film/*.html      film pages
      scripts/*.html         raw script pages, as served
      manifest.jsonl         one ScriptEntry per line, appended and flushed per script
      failures.jsonl         films skipped for good, with the reason (not retried unless
                             refresh=True)

Files are written to a temporary name and renamed, so a crash never leaves half a page
that a resumed crawl would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

from tqdm import tqdm

from training.corpora.common import Document, append_jsonl, sha256_file, write_atomic
from training.corpora.http import FetchError, PoliteClient, RobotsDisallowedError, today
from training.corpora.screenplay import Element, parse_page, to_plain_text
from training.corpora.text_encoding import decode_bytes

log = logging.getLogger(__name__)

MIN_ELEMENTS = 20  # fewer parsed elements than this: a stub page, not a screenplay


@dataclass(frozen=True)
class ScriptEntry:
    """One line of the manifest."""

    url: str  # the script page
    title: str  # the film, as the genre page names it
    genre: str
    sha256: str  # of the raw page under cache_dir/"scripts"
    fetched: str  # ISO date-time (UTC) of the download
    path: str  # file name of the raw script page under cache_dir/"scripts"


@dataclass(frozen=True)
class Failure:
    """One line of failures.jsonl: a film skipped for good."""

    url: str  # the film page (or the script page when that is what failed)
    title: str
    genre: str
    reason: str
    when: str


# -- pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    url: str  # absolute
    title: str  # the title attribute ("" if none)
    text: str  # the link text


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: list[Link] = []
        self._open: tuple[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = {k: v or "" for k, v in attrs}
        if "href" in values:
            self._open = (urljoin(self.base, values["href"].strip()), values.get("title", ""))
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            url, title = self._open
            self.links.append(Link(url, title, " ".join("".join(self._text).split())))
            self._open = None


def links(page: str, base: str) -> list[Link]:
    """Every `<a href>` of a page, resolved against `base`."""
    parser = _Links(base)
    parser.feed(page)
    parser.close()
    return parser.links


def url_path(url: str) -> str:
    """The decoded path of a URL: the same page however its link was percent-encoded."""
    return unquote(urlsplit(url).path)


def film_links(listing: str, base: str) -> list[Link]:
    """The films of a genre page, in page order, each once, on the same site only."""
    host = urlsplit(base).netloc
    seen: set[str] = set()
    films: list[Link] = []
    for link in links(listing, base):
        path = url_path(link.url)
        if urlsplit(link.url).netloc != host or path in seen:
            continue
        if path.startswith("/Movie Scripts/") and path.endswith(" Script.html"):
            seen.add(path)
            films.append(link)
    return films


def film_title(link: Link) -> str:
    if link.text:
        return link.text
    name = link.title or url_path(link.url).rsplit("/", 1)[-1].removesuffix(".html")
    return name.removesuffix(" Script").strip()


def script_link(film_page: str, base: str) -> str | None:
    """The script page a film page links to (`/scripts/X.html`), or None."""
    host = urlsplit(base).netloc
    for link in links(film_page, base):
        path = url_path(link.url)
        same_site = urlsplit(link.url).netloc == host
        if same_site and path.startswith("/scripts/") and path.lower().endswith((".html", ".htm")):
            return link.url
    return None


def decode_page(data: bytes) -> str:
    """Text of a cached page: UTF-8, CP1252 or Latin-1 (old pages), with mojibake repaired."""
    return decode_bytes(data).text


def cache_name(url: str) -> str:
    """A readable, collision-free file name for a page: 'The-Ladder-1a2b3c4d.html'."""
    path = url_path(url)
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"\.html?$", "", stem, flags=re.IGNORECASE)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:80] or "page"
    # Keyed on the decoded path, not the host: the cache survives http -> https.
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}.html"


def _read_lines(path: Path) -> Iterator[dict[str, str]]:
    if not path.exists():
        return
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:  # a line cut short by a crash: its page is fetched again
            log.warning("%s:%d: unreadable line skipped", path, n)


def load_manifest(cache_dir: Path) -> list[ScriptEntry]:
    """The manifest's entries, in the order they were written."""
    fields = set(ScriptEntry.__dataclass_fields__)
    return [
        ScriptEntry(**{k: v for k, v in rec.items() if k in fields})
        for rec in _read_lines(cache_dir / "manifest.jsonl")
    ]


def load_failures(cache_dir: Path) -> list[Failure]:
    fields = set(Failure.__dataclass_fields__)
    return [
        Failure(**{k: v for k, v in rec.items() if k in fields})
        for rec in _read_lines(cache_dir / "failures.jsonl")
    ]


def screenplay_problem(elements: list[Element]) -> str | None:
    """Why a parsed page is not worth training on, or None when it is."""
    if len(elements) < MIN_ELEMENTS:
        return f"parsed into {len(elements)} elements (fewer than {MIN_ELEMENTS})"
    if not any(e.kind == "dialogue" for e in elements):
        return "no dialogue found"
    return None


# -- the crawler ----------------------------------------------------------------------------


class ScriptCrawler:
    def __init__(self, client: PoliteClient, site: str, cache_dir: Path) -> None:
        self.client = client
        self.site = site.rstrip("/")
        self.cache_dir = cache_dir
        self.scripts_dir = cache_dir / "scripts"
        self.manifest_path = cache_dir / "manifest.jsonl"
        self.failures_path = cache_dir / "failures.jsonl"
        self.robots_path = cache_dir / "robots.json"
        # The robots.txt cache lives with the crawl, so a resumed crawl does not fetch it again.
        if client.robots.path is None:
            client.robots.path = self.robots_path

    def genre_url(self, genre: str) -> str:
        return f"{self.site}/genre/{quote(genre)}"

    def _page(self, url: str, folder: str, *, refresh: bool = False) -> str:
        """A listing or film page: from the cache, or fetched and cached."""
        path = self.cache_dir / "pages" / folder / cache_name(url)
        if refresh or not path.exists():
            write_atomic(path, self.client.get(url).content)
        return decode_page(path.read_bytes())

    def _fail(self, url: str, title: str, genre: str, reason: str) -> None:
        log.info("skipped %r (%s): %s", title, url, reason)
        record = Failure(url, title, genre, reason, today())
        append_jsonl(self.failures_path, asdict(record))

    def _save(self, entry: ScriptEntry) -> None:
        append_jsonl(self.manifest_path, asdict(entry))

    def crawl(
        self,
        genre: str,
        limit: int | None = None,
        *,
        progress: bool = True,
        refresh: bool = False,
    ) -> list[ScriptEntry]:
        """Entries of this genre (from this run and earlier ones), at most `limit`.

        `refresh` fetches the genre page again (new films) and retries the films recorded
        as failures, their film pages included; a page in the cache is otherwise never
        fetched again, and a script already downloaded never is.
        """
        listing_url = self.genre_url(genre)
        listing = self._page(listing_url, "genre", refresh=refresh)
        films = film_links(listing, listing_url)

        known = load_manifest(self.cache_dir)
        mine = {url_path(e.url): e for e in known if e.genre == genre}
        elsewhere = {url_path(e.url): e for e in known if e.genre != genre}
        failed = {url_path(f.url) for f in load_failures(self.cache_dir)}
        retry = failed if refresh else set()
        skip = set() if refresh else failed

        entries: list[ScriptEntry] = []
        bar = tqdm(
            total=min(limit, len(films)) if limit is not None else len(films),
            desc=f"scripts: {genre}",
            unit="script",
            disable=not progress,
        )
        try:
            for film in films:
                if limit is not None and len(entries) >= limit:
                    break
                entry = self._film(film, genre, mine, elsewhere, skip, retry)
                if entry is not None:
                    entries.append(entry)
                    bar.update()
        finally:
            bar.close()
        # Entries of earlier runs whose film has left the listing still count.
        seen = {url_path(e.url) for e in entries}
        for path, old in mine.items():
            if (limit is None or len(entries) < limit) and path not in seen:
                entries.append(old)
        return entries

    def _film(
        self,
        film: Link,
        genre: str,
        mine: dict[str, ScriptEntry],
        elsewhere: dict[str, ScriptEntry],
        skip: set[str],
        retry: set[str],
    ) -> ScriptEntry | None:
        """The entry of one film: from the manifest, the cache, or the site; None if skipped.

        `skip`: paths of films and scripts recorded as failures; `retry`: those to try
        again, film page included (refresh).
        """
        title = film_title(film)
        if url_path(film.url) in skip:
            return None
        try:
            page = self._page(film.url, "film", refresh=url_path(film.url) in retry)
        except FetchError as exc:
            self._fail(film.url, title, genre, f"film page: {exc.reason}")
            return None
        url = script_link(page, film.url)
        if url is None:
            pdf = any(".pdf" in x.url.lower() for x in links(page, film.url))
            reason = "no script page linked" + (" (PDF only)" if pdf else "")
            self._fail(film.url, title, genre, reason)
            return None
        key = url_path(url)
        if key in mine:
            return mine[key]
        if key in skip:
            return None

        dest = self.scripts_dir / cache_name(url)
        if not dest.exists():  # also the case of a crash between the download and the manifest
            try:
                data = self.client.get(url).content
            except RobotsDisallowedError:
                self._fail(url, title, genre, "script page disallowed by robots.txt")
                return None
            except FetchError as exc:
                self._fail(url, title, genre, f"script page: {exc.reason}")
                return None
            write_atomic(dest, data)
        problem = screenplay_problem(parse_page(decode_page(dest.read_bytes())))
        if problem is not None:
            self._fail(url, title, genre, problem)
            return None
        other = elsewhere.get(key)
        entry = ScriptEntry(
            url=url,
            title=title,
            genre=genre,
            sha256=sha256_file(dest),
            # The same file listed under another genre keeps the date it was downloaded.
            fetched=other.fetched if other is not None else today(),
            path=dest.name,
        )
        self._save(entry)
        mine[key] = entry
        return entry


def script_documents(cache_dir: Path, entries: Iterable[ScriptEntry]) -> Iterator[Document]:
    """Parse each cached script and yield Document(title, to_plain_text(...)).

    A script listed under several genres is yielded once. A file whose hash differs from
    the manifest's raises ValueError: the cache was changed behind the crawler's back.
    """
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            continue
        seen.add(entry.path)
        path = cache_dir / "scripts" / entry.path
        if sha256_file(path) != entry.sha256:
            raise ValueError(f"{path}: sha256 differs from the manifest (delete it to refetch)")
        elements = parse_page(decode_page(path.read_bytes()))
        yield Document(entry.title, to_plain_text(elements))
