"""A real HTTP server on 127.0.0.1 that plays a volunteer-run site (IMSDb, a Gutenberg mirror).

Pages are plain bytes per path. Every request is logged with its arrival time, so tests
measure the crawler's request rate and count downloads where the server sees them. Faults
are queued per path and consumed one per request: a 429 with Retry-After, a 503, a stall
longer than the client's read timeout, a body cut short, a dropped connection.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from urllib.parse import unquote, urlsplit


def gaps(arrivals: list[float]) -> list[float]:
    """Seconds between consecutive arrivals, in time order: what a rate limit is judged by."""
    times = sorted(arrivals)
    return [b - a for a, b in pairwise(times)]


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the request line arrived
    method: str
    path: str  # decoded, without the query
    headers: dict[str, str]
    status: int


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "stall", "truncate", "reset"
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0


def too_many_requests(retry_after: str = "1") -> Fault:
    return Fault("status", 429, retry_after=retry_after)


def unavailable() -> Fault:
    return Fault("status", 503)


def stall(seconds: float) -> Fault:
    """Accept the request, then say nothing for `seconds` (the client's read timeout fires)."""
    return Fault("stall", seconds=seconds)


def truncate() -> Fault:
    """Send the full Content-Length header but only half the body, then close."""
    return Fault("truncate")


def reset() -> Fault:
    """Close the connection without a response."""
    return Fault("reset")


@dataclass
class Site:
    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def add(self, path: str, body: bytes | str, content_type: str = "text/html") -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        if isinstance(body, str) and "charset" not in content_type:
            content_type += "; charset=utf-8"
        self.pages[path] = (data, content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        from urllib.parse import quote

        return self.base_url + quote(path)

    def fail(self, path: str, *faults: Fault) -> None:
        self.faults[path].extend(faults)

    def requests_for(self, path: str, method: str = "GET") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path and h.method == method]

    def gets(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.method == "GET"]

    def download_counts(self) -> dict[str, int]:
        """Path -> how many times the server sent it in full (200 or a completing 206)."""
        counts: dict[str, int] = defaultdict(int)
        with self.lock:
            for h in self.hits:
                if h.method == "GET" and h.status in (200, 206):
                    counts[h.path] += 1
        return dict(counts)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def _record(self, status: int) -> None:
            path = unquote(urlsplit(self.path).path)
            with site.lock:
                site.hits.append(
                    Hit(self._arrived, self.command, path, dict(self.headers.items()), status)
                )

        def do_HEAD(self) -> None:
            self._arrived = time.monotonic()
            self._respond(head=True)

        def do_GET(self) -> None:
            self._arrived = time.monotonic()
            self._respond(head=False)

        def _respond(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with site.lock:
                queue = site.faults.get(path)
                fault = queue.popleft() if queue else None
            if fault is not None and fault.kind == "reset":
                self._record(0)
                self.close_connection = True
                return
            if fault is not None and fault.kind == "stall":
                self._record(0)
                time.sleep(fault.seconds)
                self.close_connection = True
                return
            if fault is not None and fault.kind == "status":
                self._record(fault.status)
                self.send_response(fault.status)
                if fault.retry_after is not None:
                    self.send_header("Retry-After", fault.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            page = site.pages.get(path)
            if page is None:
                self._record(404)
                body = b"not found"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                return
            data, content_type = page
            status, start = 200, 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    self._record(416)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self._record(status if fault is None else -status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            if fault is not None and fault.kind == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # The client hanging up on a stalled or cut-short response is the point of those
        # faults, not a server bug: no traceback in the test output.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_site(site: Site | None = None) -> Iterator[Site]:
    site = site or Site()
    server = _QuietServer(("127.0.0.1", 0), _handler(site))
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
