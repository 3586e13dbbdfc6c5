"""The script crawler against a real HTTP server shaped like IMSDb (tests/.../screenplays.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.training.corpora.screenplays import THE_LADDER, Imsdb, build_imsdb
from tests.training.corpora.site import (
    Site,
    gaps,
    reset,
    serve_site,
    stall,
    too_many_requests,
    truncate,
)
from training.corpora import scripts
from training.corpora.common import sha256_file
from training.corpora.http import USER_AGENT, PoliteClient, Politeness
from training.corpora.screenplay import parse_screenplay, to_plain_text
from training.corpora.scripts import (
    ScriptCrawler,
    ScriptEntry,
    load_failures,
    load_manifest,
    script_documents,
)

COMEDY_SCRIPTS = ["The Ladder", "Ladders & Snakes", "Biscuit's Revenge"]


def fast(rate: float = 50.0, retries: int = 4) -> Politeness:
    """Quick politeness for the tests: the behaviour is the same, only the waits are short."""
    return Politeness(
        rate=rate, retries=retries, backoff=0.01, read_timeout=0.5, connect_timeout=0.5
    )


@pytest.fixture
def imsdb() -> Iterator[tuple[Site, Imsdb]]:
    with serve_site() as site:
        yield site, build_imsdb(site)


def ladder_script(imsdb: tuple[Site, Imsdb]) -> tuple[Site, str]:
    """The site and the path of The Ladder's script page: the page the fault tests break."""
    site, data = imsdb
    path = data.film("The Ladder").script
    assert path is not None
    return site, path


def crawler(site: Site, cache: Path, politeness: Politeness | None = None) -> ScriptCrawler:
    client = PoliteClient(politeness or fast(), robots_cache=cache / "robots.json")
    return ScriptCrawler(client, site.base_url, cache)


def served_twice(site: Site) -> dict[str, int]:
    return {path: n for path, n in site.download_counts().items() if n > 1}


def test_genre_to_film_to_script_with_manifest(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, data = imsdb
    entries = crawler(site, tmp_path).crawl("Comedy", progress=False)

    assert [e.title for e in entries] == COMEDY_SCRIPTS
    assert load_manifest(tmp_path) == entries
    for entry in entries:
        film = data.film(entry.title)
        assert film.script is not None
        assert entry.url.startswith(site.base_url + "/scripts/")
        assert scripts.url_path(entry.url) == film.script
        assert entry.genre == "Comedy"
        raw = tmp_path / "scripts" / entry.path
        assert entry.sha256 == sha256_file(raw)
        assert raw.read_bytes() == site.pages[film.script][0]
        assert datetime.fromisoformat(entry.fetched).date() == datetime.now().astimezone().date()
    # Each line of the manifest is one JSON object with exactly the entry's fields.
    lines = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert [set(json.loads(line)) for line in lines] == [set(ScriptEntry.__dataclass_fields__)] * 3


def test_documents_are_the_parsed_plain_text(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, _ = imsdb
    entries = crawler(site, tmp_path).crawl("Comedy", limit=1, progress=False)
    (doc,) = script_documents(tmp_path, entries)
    assert doc.title == "The Ladder"
    assert doc.text == to_plain_text(parse_screenplay(THE_LADDER))


def test_every_request_carries_the_user_agent(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, _ = imsdb
    crawler(site, tmp_path).crawl("Comedy", progress=False)
    assert site.gets()
    assert {h.headers.get("User-Agent") for h in site.gets()} == {USER_AGENT}


def test_robots_txt_is_honoured(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, data = imsdb
    crawler(site, tmp_path).crawl("Comedy", progress=False)
    assert site.requests_for(data.disallowed) == []
    assert len(site.requests_for("/robots.txt")) == 1
    reasons = {f.title: f.reason for f in load_failures(tmp_path)}
    assert reasons["Forbidden Fruit"] == "script page disallowed by robots.txt"


def test_film_without_script_and_stub_script_are_skipped_with_reasons(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, _ = imsdb
    crawler(site, tmp_path).crawl("Comedy", progress=False)
    reasons = {f.title: f.reason for f in load_failures(tmp_path)}
    assert reasons == {
        "What's Up, Desmond?": "no script page linked (PDF only)",
        "Forbidden Fruit": "script page disallowed by robots.txt",
        "Short Subject": "parsed into 3 elements (fewer than 20)",
    }
    # A second run does not try them again.
    before = len(site.gets())
    crawler(site, tmp_path).crawl("Comedy", progress=False)
    assert len(site.gets()) == before


def test_script_that_fails_for_good_is_recorded_and_skipped(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, path = ladder_script(imsdb)
    del site.pages[path]  # 404
    entries = crawler(site, tmp_path).crawl("Comedy", progress=False)
    assert [e.title for e in entries] == COMEDY_SCRIPTS[1:]
    assert [h.status for h in site.requests_for(path)] == [404]  # not retried
    assert {f.title: f.reason for f in load_failures(tmp_path)}["The Ladder"] == (
        "script page: HTTP 404"
    )


def test_retries_exhausted_are_recorded_and_the_crawl_goes_on(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, path = ladder_script(imsdb)
    site.fail(path, *[reset()] * 3)
    entries = crawler(site, tmp_path, fast(retries=2)).crawl("Comedy", progress=False)
    assert [e.title for e in entries] == COMEDY_SCRIPTS[1:]
    assert [h.status for h in site.requests_for(path)] == [0, 0, 0]
    reason = {f.title: f.reason for f in load_failures(tmp_path)}["The Ladder"]
    assert reason.startswith("script page: gave up after 3 attempts")


def test_429_with_retry_after_then_success(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, path = ladder_script(imsdb)
    site.fail(path, too_many_requests("1"))
    entries = crawler(site, tmp_path).crawl("Comedy", limit=1, progress=False)
    assert [e.title for e in entries] == ["The Ladder"]
    hits = site.requests_for(path)
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 1.0  # the server's Retry-After was waited out


def test_stalled_response_is_retried(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, path = ladder_script(imsdb)
    site.fail(path, stall(1.5))  # longer than the 0.5 s read timeout
    entries = crawler(site, tmp_path).crawl("Comedy", limit=1, progress=False)
    assert [h.status for h in site.requests_for(path)] == [0, 200]
    assert entries[0].sha256 == sha256_file(tmp_path / "scripts" / entries[0].path)


def test_truncated_response_is_retried(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, path = ladder_script(imsdb)
    site.fail(path, truncate())
    entries = crawler(site, tmp_path).crawl("Comedy", limit=1, progress=False)
    assert [h.status for h in site.requests_for(path)] == [-200, 200]  # -: cut short
    raw = tmp_path / "scripts" / entries[0].path
    assert raw.read_bytes() == site.pages[path][0]  # the full page, not the half


def test_interrupted_crawl_resumed_downloads_nothing_twice(
    imsdb: tuple[Site, Imsdb], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, _ = imsdb
    written: list[Path] = []
    real_write = scripts.write_atomic

    def write_then_die(path: Path, data: bytes) -> None:
        real_write(path, data)
        written.append(path)
        # Killed after the second script reached the disk but before its manifest line.
        if sum(p.parent.name == "scripts" for p in written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(scripts, "write_atomic", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        crawler(site, tmp_path).crawl("Comedy", progress=False)
    monkeypatch.setattr(scripts, "write_atomic", real_write)
    assert [e.title for e in load_manifest(tmp_path)] == ["The Ladder"]
    first_run = len(site.gets())

    entries = crawler(site, tmp_path).crawl("Comedy", progress=False)

    assert [e.title for e in entries] == COMEDY_SCRIPTS
    assert load_manifest(tmp_path) == entries
    assert served_twice(site) == {}
    # The second run fetched only what the first had not: the rest of the films and scripts.
    second = {h.path for h in site.gets()[first_run:]}
    assert "/genre/Comedy" not in second and "/robots.txt" not in second
    assert "/scripts/Ladders-&-Snakes.html" not in second  # on disk, not yet in the manifest
    for e in entries:
        assert e.sha256 == sha256_file(tmp_path / "scripts" / e.path)


def test_bigger_limit_fetches_only_new_scripts(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, _ = imsdb
    assert [e.title for e in crawler(site, tmp_path).crawl("Comedy", 1, progress=False)] == [
        "The Ladder"
    ]
    before = len(site.gets())
    again = crawler(site, tmp_path).crawl("Comedy", 1, progress=False)
    assert [e.title for e in again] == ["The Ladder"]
    assert len(site.gets()) == before  # nothing at all: genre page and film page are cached
    entries = crawler(site, tmp_path).crawl("Comedy", 3, progress=False)
    assert [e.title for e in entries] == COMEDY_SCRIPTS
    assert served_twice(site) == {}


def test_refresh_refetches_the_listing_but_no_script(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, _ = imsdb
    crawler(site, tmp_path).crawl("Comedy", progress=False)
    crawler(site, tmp_path).crawl("Comedy", progress=False, refresh=True)
    counts = site.download_counts()
    assert counts["/genre/Comedy"] == 2
    assert {p: n for p, n in counts.items() if p.startswith("/scripts/")} == {
        "/scripts/The-Ladder.html": 1,
        "/scripts/Ladders-&-Snakes.html": 1,
        "/scripts/Biscuit's-Revenge.html": 1,
        "/scripts/Short-Subject.html": 1,
    }


def test_a_script_in_two_genres_is_downloaded_once(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, _ = imsdb
    comedy = crawler(site, tmp_path).crawl("Comedy", progress=False)
    drama = crawler(site, tmp_path).crawl("Drama", progress=False)
    assert [e.title for e in drama] == ["Night Ferry", "The Crossing", "The Ladder"]
    assert drama[2].path == comedy[0].path and drama[2].genre == "Drama"
    assert served_twice(site) == {}
    titles = [d.title for d in script_documents(tmp_path, [*comedy, *drama])]
    assert titles == [*COMEDY_SCRIPTS, "Night Ferry", "The Crossing"]  # The Ladder once


def test_changed_cache_file_is_refused(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, _ = imsdb
    entries = crawler(site, tmp_path).crawl("Comedy", 1, progress=False)
    (tmp_path / "scripts" / entries[0].path).write_text("tampered")
    with pytest.raises(ValueError, match="sha256"):
        list(script_documents(tmp_path, entries))


def assert_spaced(site: Site, interval: float) -> None:
    spacing = gaps([h.at for h in site.hits])
    assert spacing and min(spacing) >= interval, spacing


def test_default_rate_is_one_request_per_second_at_the_server(
    imsdb: tuple[Site, Imsdb], tmp_path: Path
) -> None:
    site, _ = imsdb
    entries = crawler(site, tmp_path, Politeness()).crawl("Western", progress=False)
    assert [e.title for e in entries] == ["Dust"]
    # robots.txt, then genre page, film page and script: 4 requests, each >= 1 s apart.
    assert [h.path for h in site.hits] == [
        "/robots.txt",
        "/genre/Western",
        "/Movie Scripts/Dust Script.html",
        "/scripts/Dust.html",
    ]
    assert_spaced(site, 1.0)


def test_rate_five_per_second_at_the_server(imsdb: tuple[Site, Imsdb], tmp_path: Path) -> None:
    site, _ = imsdb
    crawler(site, tmp_path, fast(rate=5.0)).crawl("Comedy", progress=False)
    assert len(site.hits) == 12  # robots, genre, 6 film pages, 4 scripts
    assert_spaced(site, 0.2)
