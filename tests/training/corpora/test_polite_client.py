"""PoliteClient against a real server on 127.0.0.1: what the site sees is what we promise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.training.corpora.site import (
    Site,
    gaps,
    reset,
    serve_site,
    stall,
    too_many_requests,
    truncate,
    unavailable,
)
from training.corpora.http import (
    USER_AGENT,
    FetchError,
    PoliteClient,
    Politeness,
    RobotsDisallowedError,
    parse_retry_after,
)

FAST = Politeness(rate=50, backoff=0.01, max_backoff=0.05, read_timeout=0.5, connect_timeout=1)


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        s.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        yield s


def test_default_rate_is_one_request_a_second_measured_by_the_server(site: Site) -> None:
    for i in range(3):
        site.add(f"/page{i}.html", f"<p>page {i}</p>")
    with PoliteClient() as client:
        for i in range(3):
            client.get(site.url(f"/page{i}.html"))
    assert [h.path for h in site.hits] == [
        "/robots.txt",
        "/page0.html",
        "/page1.html",
        "/page2.html",
    ]
    assert min(gaps([h.at for h in site.hits])) >= 1.0


def test_rate_holds_through_retries_and_robots_crawl_delay(site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\nCrawl-delay: 0.3\n", "text/plain")
    site.add("/a.html", "a")
    site.fail("/a.html", unavailable(), reset(), unavailable())
    with PoliteClient(Politeness(rate=10, backoff=0.01, read_timeout=0.5)) as client:
        assert client.get(site.url("/a.html")).text == "a"
    assert len(site.requests_for("/a.html")) == 4
    # Crawl-delay (0.3 s) is slower than --rate (0.1 s), so it wins.
    assert min(gaps([h.at for h in site.hits])) >= 0.3


def test_user_agent_is_sent_with_every_request(site: Site) -> None:
    site.add("/x.html", "x")
    with PoliteClient(FAST) as client:
        client.get(site.url("/x.html"))
    assert {h.headers["User-Agent"] for h in site.hits} == {USER_AGENT}


def test_robots_txt_disallow_is_obeyed_and_cached_on_disk(site: Site, tmp_path: Path) -> None:
    site.add("/private/secret.html", "no")
    site.add("/public.html", "yes")
    cache = tmp_path / "robots.json"
    with PoliteClient(FAST, robots_cache=cache) as client:
        with pytest.raises(RobotsDisallowedError):
            client.get(site.url("/private/secret.html"))
        client.get(site.url("/public.html"))
    with PoliteClient(FAST, robots_cache=cache) as client:  # a resumed run
        client.get(site.url("/public.html"))
    assert not site.requests_for("/private/secret.html")
    assert len(site.requests_for("/robots.txt")) == 1
    assert site.base_url in json.loads(cache.read_text())


def test_unreachable_robots_txt_means_stay_out(site: Site) -> None:
    site.fail("/robots.txt", *[unavailable()] * 5)
    site.add("/page.html", "p")
    with PoliteClient(FAST) as client, pytest.raises(RobotsDisallowedError):
        client.get(site.url("/page.html"))
    assert not site.requests_for("/page.html")


def test_429_waits_what_retry_after_asks(site: Site) -> None:
    site.add("/busy.html", "done")
    site.fail("/busy.html", too_many_requests("1"))
    with PoliteClient(FAST) as client:
        assert client.get(site.url("/busy.html")).text == "done"
    first, second = site.requests_for("/busy.html")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0


def test_a_server_asking_for_hours_is_given_up_on(site: Site) -> None:
    site.add("/busy.html", "done")
    site.fail("/busy.html", too_many_requests("7200"))
    with PoliteClient(FAST) as client, pytest.raises(FetchError, match="retry after 7200"):
        client.get(site.url("/busy.html"))
    assert len(site.requests_for("/busy.html")) == 1


def test_a_stalled_server_times_out_and_is_retried(site: Site) -> None:
    site.add("/slow.html", "finally")
    site.fail("/slow.html", stall(2.0))
    with PoliteClient(FAST) as client:
        assert client.get(site.url("/slow.html")).text == "finally"
    assert len(site.requests_for("/slow.html")) == 2


def test_retries_run_out_with_a_clear_error(site: Site) -> None:
    site.add("/down.html", "x")
    site.fail("/down.html", *[unavailable()] * 3)
    politeness = Politeness(rate=50, backoff=0.01, retries=2, read_timeout=0.5)
    with PoliteClient(politeness) as client, pytest.raises(FetchError, match="3 attempts"):
        client.get(site.url("/down.html"))


def test_404_is_not_retried(site: Site) -> None:
    with PoliteClient(FAST) as client, pytest.raises(FetchError) as err:
        client.get(site.url("/missing.html"))
    assert err.value.status == 404
    assert len(site.requests_for("/missing.html")) == 1


def test_truncated_download_continues_with_a_range_request(site: Site, tmp_path: Path) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: the first half reaches the disk before the cut
    site.add("/book.zip", data, "application/zip")
    site.fail("/book.zip", truncate())
    with PoliteClient(FAST) as client:
        got = client.download(site.url("/book.zip"), tmp_path / "book.zip")
    assert (tmp_path / "book.zip").read_bytes() == data and got.bytes == len(data)
    first, second = site.requests_for("/book.zip")
    assert "Range" not in first.headers
    # Whatever reached the disk before the cut is kept: the retry asks only for the rest.
    assert second.status == 206
    assert 0 < int(second.headers["Range"].removeprefix("bytes=").rstrip("-")) <= len(data) // 2
    assert not (tmp_path / "book.zip.part").exists()


def test_a_part_file_from_an_earlier_run_is_continued(site: Site, tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    site.add("/book.txt", data, "text/plain")
    (tmp_path / "book.txt.part").write_bytes(data[:3000])
    with PoliteClient(FAST) as client:
        got = client.download(site.url("/book.txt"), tmp_path / "book.txt")
    assert got.resumed and (tmp_path / "book.txt").read_bytes() == data
    (only,) = site.requests_for("/book.txt")
    assert only.headers["Range"] == "bytes=3000-"


def test_a_part_file_longer_than_the_resource_starts_over(site: Site, tmp_path: Path) -> None:
    data = b"new, shorter edition"
    site.add("/book.txt", data, "text/plain")
    (tmp_path / "book.txt.part").write_bytes(b"x" * 500)
    with PoliteClient(FAST) as client:
        client.download(site.url("/book.txt"), tmp_path / "book.txt")
    assert (tmp_path / "book.txt").read_bytes() == data
    assert [h.status for h in site.requests_for("/book.txt")] == [416, 200]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Politeness(rate=0)


ROBOTS = """\
# comments are ignored
User-agent: Googlebot
Crawl-delay: 0.2

User-agent: TalkativeCorpusBot
User-agent: OtherBot
Disallow: /scripts/private
Request-rate: 1/5  # one request every five seconds

User-agent: *
Crawl-delay: 2.5
Disallow: /search
"""


@pytest.mark.parametrize(
    ("agent", "delay"),
    [(USER_AGENT, 5.0), ("Googlebot/2.1", 0.2), ("curl/8", 2.5)],
)
def test_robots_delays_allow_decimals_and_request_rate(agent: str, delay: float) -> None:
    from training.corpora.http import Robots

    robots = Robots()
    robots.parse(ROBOTS.splitlines())
    assert robots.crawl_delay(agent) == delay
    assert robots.can_fetch(USER_AGENT, "http://x/search") is True  # its own group applies
    assert robots.can_fetch(USER_AGENT, "http://x/scripts/private/a.html") is False
    assert robots.can_fetch("curl/8", "http://x/search") is False
