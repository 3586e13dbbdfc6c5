"""GutenbergClient against real local servers: HTTP (site.py) and FTP (pyftpdlib)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.training.corpora import gutenberg_mirror as gm
from tests.training.corpora.site import (
    Site,
    gaps,
    serve_site,
    stall,
    too_many_requests,
    truncate,
)
from training.corpora import gutenberg
from training.corpora.gutenberg import GutenbergClient, book_dir, book_documents
from training.corpora.http import Politeness
from training.corpora.pg_catalog import CatalogError, select

FAST = dict(rate=50.0, backoff=0.01, read_timeout=0.5, connect_timeout=1.0, retries=3)
ZIP_4650 = gm.book_path(gm.BY_ID[4650])
ZIP_13951 = gm.book_path(gm.BY_ID[13951])
ZIP_2413 = gm.book_path(gm.BY_ID[2413])


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return gm.build_mirror(tmp_path / "mirror")


@pytest.fixture
def http_site(mirror: Path) -> Iterator[Site]:
    with serve_site() as site:
        gm.publish(site, mirror)
        yield site


@pytest.fixture
def ftp_site(mirror: Path) -> Iterator[gm.FtpSite]:
    with gm.serve_ftp(mirror) as site:
        yield site


def client(url: str, cache: Path, **knobs: float) -> GutenbergClient:
    return GutenbergClient(url, cache, Politeness(**{**FAST, **knobs}))  # type: ignore[arg-type]


def check_french(cache: Path, entries: list[gutenberg.BookEntry]) -> None:
    """The four fetchable French books, each decoded and stripped exactly."""
    assert [e.id for e in entries] == gm.FETCHABLE_FR
    for entry in entries:
        book = gm.BY_ID[entry.id]
        assert (cache / entry.path).read_text(encoding="utf-8") == book.body
        assert entry.encoding == book.encoding and entry.language == "fr"
        assert entry.bytes == len(book.body.encode("utf-8"))
    by_id = {e.id: e for e in entries}
    assert "château de M. le baron" in (cache / by_id[4650].path).read_text(encoding="utf-8")
    assert "les mœurs" in (cache / by_id[4650].path).read_text(encoding="utf-8")
    assert "où naquit" in (cache / by_id[13951].path).read_text(encoding="utf-8")
    assert "à l’Étude" in (cache / by_id[2413].path).read_text(encoding="utf-8")
    assert "— Levez-vous" in (cache / by_id[2413].path).read_text(encoding="utf-8")
    assert "était évêque" in (cache / by_id[135].path).read_text(encoding="utf-8")
    assert by_id[135].fixes > 0 and by_id[4650].fixes == 0
    failures = {json.loads(line)["id"]: json.loads(line)["kind"]
                for line in (cache / "failures.jsonl").read_text().splitlines()}  # fmt: skip
    assert failures == {5001: "markers", 99999: "missing"}
    manifest = [json.loads(line) for line in (cache / "manifest.jsonl").read_text().splitlines()]
    assert [m["id"] for m in manifest] == gm.FETCHABLE_FR
    assert {"sha256", "url", "encoding", "fixes", "bytes", "fetched"} <= set(manifest[0])
    docs = list(book_documents(cache, entries))
    assert docs[2].title == "Madame Bovary (2413)" and docs[2].text == gm.BOVARY_BODY


def test_layout():
    assert book_dir(12345) == "1/2/3/4/12345/"
    assert book_dir(7) == "0/7/"
    assert book_dir(135) == "1/3/135/"


def test_http_mirror_french_books(http_site: Site, tmp_path: Path):
    cache = tmp_path / "cache"
    with client(http_site.url("/"), cache) as pg:
        books = select(pg.catalog(), language="fr")
        entries = pg.fetch(books, max_bytes=10**6, progress=False)
    check_french(cache, entries)
    counts = http_site.download_counts()
    assert all(n == 1 for n in counts.values())
    # -0.zip is preferred; the .txt of 135 is found after its zips were missing.
    assert ZIP_4650 in counts and "/1/3/135/135-0.txt" in counts
    assert http_site.requests_for("/1/3/135/135-0.zip")[0].status == 404


def test_ftp_mirror_french_books(ftp_site: gm.FtpSite, tmp_path: Path):
    cache = tmp_path / "cache"
    with client(ftp_site.url, cache) as pg:
        books = select(pg.catalog("csv"), language="fr")
        entries = pg.fetch(books, max_bytes=10**6, progress=False)
    check_french(cache, entries)
    assert all(n == 1 for n in ftp_site.retr_counts().values())
    assert "/1/3/135/135-0.zip" not in ftp_site.retr_counts()  # SIZE said 550: no RETR


def test_catalogue_sources_and_selection(http_site: Site, tmp_path: Path):
    ids = {}
    for source in ("csv", "rdf", "gutindex", "auto"):
        with client(http_site.url("/"), tmp_path / source) as pg:
            books = pg.catalog(source)
            ids[source] = [b.id for b in select(books, language="fr", author="Hugo")]
            if source == "gutindex":
                with pytest.raises(CatalogError):
                    select(books, language="fr", subject="Paris")
            else:
                found = select(books, language="fr", subject="paris (france)")
                assert [b.id for b in found] == [135]
    assert ids == {"csv": [135], "rdf": [135], "gutindex": [135], "auto": [135]}
    assert http_site.download_counts()["/cache/epub/feeds/pg_catalog.csv"] == 2  # csv, auto
    with client(http_site.url("/"), tmp_path / "csv") as pg:
        pg.catalog("csv")  # cached: not downloaded again
    assert http_site.download_counts()["/cache/epub/feeds/pg_catalog.csv"] == 2


def test_auto_falls_back_to_gutindex(tmp_path: Path):
    root = gm.build_mirror(tmp_path / "mirror", catalogs=("gutindex",))
    with serve_site() as site:
        gm.publish(site, root)
        with client(site.url("/"), tmp_path / "cache") as pg:
            books = pg.catalog()
    assert {b.id for b in books} >= set(gm.FRENCH_IDS)


def test_rdf_formats_spare_the_probes(http_site: Site, tmp_path: Path):
    with client(http_site.url("/"), tmp_path / "cache") as pg:
        books = select(pg.catalog("rdf"), language="fr", author="Dumas")
        [entry] = pg.fetch(books, max_bytes=10**6, progress=False)
    assert entry.encoding == "latin-1"
    assert http_site.requests_for("/1/3/9/5/13951/13951-0.zip") == []  # not listed: not asked


def test_budget_counts_whole_books(http_site: Site, tmp_path: Path):
    sizes = [len(gm.BY_ID[i].body.encode("utf-8")) for i in gm.FETCHABLE_FR]
    budget = sizes[0] + sizes[1] + sizes[2] // 2
    with client(http_site.url("/"), tmp_path / "cache") as pg:
        books = select(pg.catalog(), language="fr")
        entries = pg.fetch(books, max_bytes=budget, progress=False)
        assert [e.id for e in entries] == gm.FETCHABLE_FR[:2]
        assert sum(e.bytes for e in entries) <= budget
        assert ZIP_2413 in http_site.download_counts()  # fetched to learn its size, kept
        assert "/1/3/135/135-0.txt" not in http_site.download_counts()  # the fetch stopped
        exact = pg.fetch(books, max_bytes=sizes[0] + sizes[1], progress=False)
        assert [e.id for e in exact] == gm.FETCHABLE_FR[:2]
        more = pg.fetch(books, max_bytes=10**6, progress=False)
    assert [e.id for e in more] == gm.FETCHABLE_FR
    assert all(n == 1 for n in http_site.download_counts().values())


def test_http_faults_recovered(http_site: Site, tmp_path: Path):
    http_site.fail(ZIP_4650, stall(1.0))  # longer than the 0.5 s read timeout
    http_site.fail(ZIP_13951, too_many_requests("1"))
    http_site.fail(ZIP_2413, truncate())
    cache = tmp_path / "cache"
    with client(http_site.url("/"), cache) as pg:
        entries = pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    check_french(cache, entries)
    # Retry-After honoured: the retry came at least a second after the 429.
    first, second = http_site.requests_for(ZIP_13951)
    assert first.status == 429 and second.at - first.at >= 1.0
    # The cut-short body (logged as -200) was fetched again. (http.py buffers 64 KiB chunks,
    # so a body this small is not continued with Range: nothing of it reached the disk.)
    cut, again = http_site.requests_for(ZIP_2413)
    assert cut.status == -200 and again.status in (200, 206)


def test_ftp_faults_recovered(ftp_site: gm.FtpSite, tmp_path: Path):
    ftp_site.truncate_once(ZIP_4650)
    ftp_site.busy_once(ZIP_13951)
    cache = tmp_path / "cache"
    with client(ftp_site.url, cache) as pg:
        entries = pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    check_french(cache, entries)
    retrs = [r for r in ftp_site.retrs if r.path == ZIP_4650]
    assert [r.rest > 0 for r in retrs] == [False, True]  # continued with REST
    assert retrs[1].rest == len(gm.BY_ID[4650].data) // 2
    assert len([r for r in ftp_site.retrs if r.path == ZIP_13951]) == 2


def test_ftp_missing_file_is_a_fetch_error(ftp_site: gm.FtpSite, tmp_path: Path):
    from training.corpora.ftp import PoliteFTP
    from training.corpora.http import FetchError

    with PoliteFTP(Politeness(**FAST)) as ftp, pytest.raises(FetchError) as info:  # type: ignore[arg-type]
        ftp.download(ftp_site.url + "nope.zip", tmp_path / "nope.zip")
    assert info.value.status == 550


def test_interrupted_fetch_resumes_without_downloading_twice(
    http_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "cache"
    real = GutenbergClient._process
    calls = []

    def crash_on_third(self, book, download):
        calls.append(book.id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user pressed ^C half-way
        return real(self, book, download)

    monkeypatch.setattr(GutenbergClient, "_process", crash_on_third)
    with client(http_site.url("/"), cache) as pg, pytest.raises(KeyboardInterrupt):
        pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    monkeypatch.setattr(GutenbergClient, "_process", real)
    with client(http_site.url("/"), cache) as pg:
        entries = pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    assert [e.id for e in entries] == gm.FETCHABLE_FR
    counts = http_site.download_counts()
    # Done before the crash, and the one downloaded but not yet processed when it came:
    # nothing is downloaded twice.
    assert counts[ZIP_4650] == counts[ZIP_13951] == counts[ZIP_2413] == 1
    assert counts["/1/3/135/135-0.txt"] == 1
    # What is known to be missing is not asked for again.
    assert len(http_site.requests_for("/1/3/135/135-0.zip")) == 1


def test_again_is_all_from_cache(http_site: Site, tmp_path: Path):
    cache = tmp_path / "cache"
    with client(http_site.url("/"), cache) as pg:
        books = select(pg.catalog(), language="fr")
        first = pg.fetch(books, 10**6, progress=False)
        before = len(http_site.hits)
        again = pg.fetch(books, 10**6, progress=False)
    assert again == first and len(http_site.hits) == before


def test_http_request_rate_measured_at_the_server(http_site: Site, tmp_path: Path):
    rate = 8.0
    with client(http_site.url("/"), tmp_path / "cache", rate=rate) as pg:
        pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    arrivals = [h.at for h in http_site.hits]
    assert len(arrivals) >= 10
    assert min(gaps(arrivals)) >= 1.0 / rate


def test_ftp_request_rate_measured_at_the_server(ftp_site: gm.FtpSite, tmp_path: Path):
    rate = 8.0
    ftp_site.truncate_once(ZIP_4650)  # the resumed transfer is a request too
    with client(ftp_site.url, tmp_path / "cache", rate=rate) as pg:
        pg.fetch(select(pg.catalog(), language="fr"), 10**6, progress=False)
    arrivals = [r.at for r in ftp_site.retrs]
    assert len(arrivals) >= 6
    assert min(gaps(arrivals)) >= 1.0 / rate
