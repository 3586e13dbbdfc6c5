"""A polite HTTP fetcher for the corpus crawlers.

Sites that host scripts and books are run by volunteers: a crawler that hammers
them gets blocked (and deserves to). Every request made through `PoliteClient`

- is checked against the host's robots.txt (cached on disk for a day, so a resumed
  crawl does not fetch it again),
- waits until at least `1 / rate` seconds (or the robots.txt Crawl-delay or
  Request-rate, when longer) have passed since the previous request to the same host
  started *and* ended, so the rate the server measures never exceeds the limit,
- carries a User-Agent that names the tool and where to complain,
- has connect and read timeouts, so a stalled server never hangs the crawl,
- is retried on timeouts, dropped connections, 429 and 5xx by the shared policy
  (talkative_common/retries.py: exponential backoff and jitter, at least what a `Retry-After`
  header asks for), the pauses taken in the per-host rate limiter.

Downloads go to `NAME.part` and are renamed when complete; a download cut short
is continued with a `Range` request rather than started again.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx

from talkative_common.retries import Exhausted, RetryPolicy, Transient, retry_after_seconds
from training.corpora.common import write_atomic

USER_AGENT = "TalkativeCorpusBot/0.1 (+https://github.com/talkative/talkative; corpus research)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ROBOTS_TTL_S = 24 * 3600.0  # how long a cached robots.txt is trusted (Google's rule of thumb)


class FetchError(RuntimeError):
    """A request that failed for good (after the retries, or with a status not worth retrying)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class RobotsDisallowedError(FetchError):
    """robots.txt forbids this URL to our User-Agent."""


parse_retry_after = retry_after_seconds  # the shared parser, under the name tests use


@dataclass
class Politeness:
    """The knobs of good behaviour; the defaults are what the public sites should see."""

    rate: float = 1.0  # requests per second per host, at most
    user_agent: str = USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 4  # attempts after the first
    backoff: float = 1.0  # first backoff in seconds, doubled each retry, plus jitter
    max_backoff: float = 60.0
    max_retry_after: float = 600.0  # a server asking for longer than this is given up on
    respect_robots: bool = True

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive (requests per second)")

    def policy(self) -> RetryPolicy:
        """The shared retry policy with these knobs (talkative_common/retries.py)."""
        return RetryPolicy(
            retries=self.retries,
            backoff_s=self.backoff,
            max_backoff_s=self.max_backoff,
            statuses=RETRY_STATUSES,
            max_retry_after_s=self.max_retry_after,
        )


class RateLimiter:
    """At least `interval` seconds between two requests to the same host.

    The gap is counted from the *end* of the previous request (`done`) as well as from its
    start, so the server never sees two requests closer than `interval`, however long the
    connection set-up of either took: the rate the server measures is the rate we promise.
    """

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}  # start or end of the latest request, the later
        self._hold: dict[str, float] = {}  # no request before this (Retry-After, backoff)
        self._lock = threading.Lock()

    def wait(self, host: str, interval: float | None = None) -> None:
        """Block until a request to `host` may start; `interval` (Crawl-delay) can only slow."""
        gap = self.interval if interval is None else max(self.interval, interval)
        with self._lock:  # one waiter at a time: concurrent callers are serialised, not bunched
            now = self._clock()
            last = self._last.get(host)
            ready = max(self._hold.get(host, now), now if last is None else last + gap)
            if ready > now:
                self._sleep(ready - now)
                now = self._clock()
            self._last[host] = now

    def done(self, host: str) -> None:
        """The request that the last `wait` let through has finished: the gap counts from now."""
        with self._lock:
            self._last[host] = self._clock()

    def defer(self, host: str, seconds: float) -> None:
        """No request to `host` for at least `seconds` from now (Retry-After, backoff)."""
        with self._lock:
            self._hold[host] = max(self._hold.get(host, 0.0), self._clock() + seconds)


class Robots(urllib.robotparser.RobotFileParser):
    """urllib's robots.txt rules, plus the delays it drops.

    urllib reads `Crawl-delay` only when it is a whole number and ignores the group's
    `Request-rate` when asked for a delay; sites write "Crawl-delay: 0.5" and
    "Request-rate: 1/5", so both are read here, the slower one winning.
    """

    def __init__(self) -> None:
        super().__init__()
        self._delays: list[tuple[list[str], float]] = []

    def parse(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        super().parse(lines)
        self._delays = _group_delays(lines)

    def crawl_delay(self, useragent: str) -> float | None:  # type: ignore[override]
        token = useragent.split("/")[0].lower()
        fallback: float | None = None
        for agents, delay in self._delays:
            if any(a != "*" and a in token for a in agents):
                return delay
            if "*" in agents and fallback is None:
                fallback = delay
        return fallback


def _group_delays(lines: list[str]) -> list[tuple[list[str], float]]:
    """(user agents of a group, seconds between requests) for every group that sets one."""
    groups: list[tuple[list[str], float]] = []
    agents: list[str] = []
    delay: float | None = None
    in_rules = False

    def close() -> None:
        if agents and delay is not None:
            groups.append((agents, delay))

    for raw in lines:
        key, _, value = raw.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:  # a new group starts
                close()
                agents, delay, in_rules = [], None, False
            agents.append(value.lower())
        elif key in ("crawl-delay", "request-rate"):
            in_rules = True
            seconds = _delay_seconds(key, value)
            if seconds is not None:
                delay = max(delay or 0.0, seconds)
        elif key:
            in_rules = True
    close()
    return groups


def _delay_seconds(key: str, value: str) -> float | None:
    try:
        if key == "crawl-delay":
            seconds = float(value)
        else:  # "n/s": n requests every s seconds (an "m" or "h" suffix is rare; seconds assumed)
            n, _, per = value.partition("/")
            seconds = float(per.rstrip("smh") or "nan") / float(n)
    except (ValueError, ZeroDivisionError):
        return None
    return seconds if seconds >= 0 and seconds == seconds else None


@dataclass
class RobotsCache:
    """robots.txt per host, kept in memory and (optionally) in a JSON file across runs."""

    path: Path | None = None
    ttl: float = ROBOTS_TTL_S
    _parsers: dict[str, Robots] = field(default_factory=dict)

    def _load_disk(self) -> dict[str, dict[str, object]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data: dict[str, dict[str, object]] = json.loads(self.path.read_text(encoding="utf-8"))
            return data
        except (OSError, ValueError):
            return {}

    def get(self, origin: str) -> Robots | None:
        if origin in self._parsers:
            return self._parsers[origin]
        entry = self._load_disk().get(origin)
        if entry is None or time.time() - float(str(entry["fetched"])) > self.ttl:
            return None
        parser = self._parse(str(entry["status"]), str(entry["text"]))
        self._parsers[origin] = parser
        return parser

    def put(self, origin: str, status: int, text: str) -> Robots:
        parser = self._parse(str(status), text)
        self._parsers[origin] = parser
        # An outage (5xx) is remembered for this run only, not for a day on disk.
        if self.path is not None and status < 500:
            data = self._load_disk()
            data[origin] = {"status": status, "text": text, "fetched": time.time()}
            write_atomic(self.path, json.dumps(data, indent=1).encode("utf-8"))
        return parser

    @staticmethod
    def _parse(status: str, text: str) -> Robots:
        parser = Robots()
        code = int(status)
        if code in (401, 403) or code >= 500:
            # Access-controlled (urllib's convention) or unreachable (RFC 9309: an
            # unreachable robots.txt means full disallow): a crawler that cannot ask must not take.
            parser.parse(["User-agent: *", "Disallow: /"])
        elif code >= 400:
            parser.parse([])  # no robots.txt: everything is allowed
        else:
            parser.parse(text.splitlines())
        return parser


@dataclass(frozen=True)
class Download:
    path: Path
    url: str
    bytes: int
    resumed: bool  # continued from a partial file left by an earlier attempt or run


class PoliteSession:
    """What the polite downloaders share: their manners (`Politeness`), the rate limiter
    that keeps them, the count of requests made, and closing as a context manager."""

    def __init__(
        self, politeness: Politeness | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.politeness = politeness or Politeness()
        self._sleep = sleep
        self.limiter = RateLimiter(1.0 / self.politeness.rate, sleep=sleep)
        self.requests_made = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class PoliteClient(PoliteSession):
    """Synchronous: crawls are slow on purpose, and one connection per host is the polite way."""

    def __init__(
        self,
        politeness: Politeness | None = None,
        *,
        robots_cache: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(politeness, sleep=sleep)
        p = self.politeness
        self.robots = RobotsCache(robots_cache)
        self._client = httpx.Client(
            headers={"User-Agent": p.user_agent},
            timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout),
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    # -- robots.txt -------------------------------------------------------------------------

    def _robots_for(self, url: str) -> Robots | None:
        if not self.politeness.respect_robots:
            return None
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        parser = self.robots.get(origin)
        if parser is None:
            try:
                response = self._send("GET", f"{origin}/robots.txt", check_robots=False)
                parser = self.robots.put(origin, response.status_code, response.text)
            except FetchError as exc:
                parser = self.robots.put(origin, exc.status or 503, "")
        return parser

    def allowed(self, url: str) -> bool:
        parser = self._robots_for(url)
        return parser is None or parser.can_fetch(self.politeness.user_agent, url)

    def _crawl_delay(self, url: str) -> float | None:
        parser = self._robots_for(url)
        if parser is None:
            return None
        delay = parser.crawl_delay(self.politeness.user_agent)
        return float(delay) if delay is not None else None

    # -- requests ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        check_robots: bool = True,
        stream_to: Callable[[httpx.Response], None] | None = None,
        headers_for_attempt: Callable[[], dict[str, str]] | None = None,
    ) -> httpx.Response:
        """One logical request: robots check, rate limit, retries. Raises FetchError."""
        p = self.politeness
        if check_robots and not self.allowed(url):
            raise RobotsDisallowedError(url, "disallowed by robots.txt")
        crawl_delay = self._crawl_delay(url) if check_robots else None
        host = urlsplit(url).netloc

        def attempt() -> httpx.Response:
            self.limiter.wait(host, crawl_delay)
            self.requests_made += 1
            try:
                extra = headers_for_attempt() if headers_for_attempt else {}
                merged = {**(headers or {}), **extra}
                request = self._client.build_request(method, url, headers=merged)
                response = self._client.send(request, stream=stream_to is not None)
                try:
                    if response.status_code in RETRY_STATUSES:
                        raise Transient(
                            f"HTTP {response.status_code}",
                            status=response.status_code,
                            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                        )
                    if response.status_code >= 400:
                        raise FetchError(url, f"HTTP {response.status_code}", response.status_code)
                    if stream_to is not None:
                        stream_to(response)
                    else:
                        response.read()
                    return response
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                raise Transient(f"timed out ({type(exc).__name__})") from exc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # Connection refused or reset, body cut short (RemoteProtocolError)...
                raise Transient(f"{type(exc).__name__}: {exc}") from exc
            finally:
                self.limiter.done(host)

        try:
            # The rate limiter sleeps before the next attempt: deferring it (rather than
            # sleeping in the policy) makes any other request to this host wait as well.
            return p.policy().call(attempt, sleep=lambda s: self.limiter.defer(host, s))
        except Exhausted as exc:
            last = exc.last
            assert isinstance(last, Transient)
            if last.retry_after_s is not None and last.retry_after_s > p.max_retry_after:
                reason = f"server asks to retry after {last.retry_after_s:.0f} s"
                raise FetchError(url, reason, last.status) from last
            reason = f"gave up after {exc.attempts} attempts: {last.reason}"
            raise FetchError(url, reason, last.status) from last

    def get(self, url: str) -> httpx.Response:
        """GET a page (body read into memory)."""
        return self._send("GET", url)

    def download(self, url: str, dest: Path, *, chunk: int = 1 << 16) -> Download:
        """Download `url` to `dest`, continuing a `dest.part` left by an interrupted attempt."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        started_with = part.stat().st_size if part.exists() else 0

        def range_header() -> dict[str, str]:
            have = part.stat().st_size if part.exists() else 0
            return {"Range": f"bytes={have}-"} if have else {}

        def receive(response: httpx.Response) -> None:
            have = part.stat().st_size if part.exists() else 0
            if response.status_code == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != have:
                    raise httpx.RemoteProtocolError(
                        f"server resumed at byte {start}, expected {have}"
                    )
                mode = "ab"
            else:
                mode = "wb"  # the server ignored Range: start over
                have = 0
            expected = response.headers.get("Content-Length")
            got = 0
            with part.open(mode) as fh:
                for block in response.iter_raw(chunk):
                    fh.write(block)
                    got += len(block)
            # httpx raises on a short body when it can tell; double-check the declared length.
            if expected is not None and got != int(expected):
                raise httpx.RemoteProtocolError(f"body cut short: {got} of {expected} bytes")

        # identity: byte offsets of a Range request must be offsets in the file we store.
        headers = {"Accept-Encoding": "identity"}
        try:
            self._send(
                "GET", url, headers=headers, stream_to=receive, headers_for_attempt=range_header
            )
        except FetchError as exc:
            if exc.status != 416 or not part.exists():
                raise
            # 416: our partial file is not a prefix the server can continue (it changed,
            # or we already hold it all but crashed before the rename): start over once.
            part.unlink()
            self._send(
                "GET", url, headers=headers, stream_to=receive, headers_for_attempt=range_header
            )
        part.replace(dest)
        return Download(dest, url, dest.stat().st_size, resumed=started_with > 0)


def _content_range_start(value: str | None) -> int:
    """'bytes 100-199/200' -> 100."""
    if not value or not value.startswith("bytes "):
        raise httpx.RemoteProtocolError(f"bad Content-Range: {value!r}")
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError as exc:
        raise httpx.RemoteProtocolError(f"bad Content-Range: {value!r}") from exc


def today() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
