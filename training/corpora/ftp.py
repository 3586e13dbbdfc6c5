"""A polite FTP downloader, for PG mirrors such as ftp://ftp.ibiblio.org/pub/docs/books/gutenberg/.

It behaves like `http.PoliteClient.download`, and returns the same `Download`:

- anonymous login, passive mode (works through NAT and firewalls), binary transfers;
- one control connection per host, reused, reopened after an error;
- the per-host `RateLimiter` of http.py; every command that opens a data connection
  (RETR, LIST, NLST) counts as a request, the gap counted from the end of the previous;
- retries by the shared policy (talkative_common/retries.py: exponential backoff and jitter) on
  timeouts, dropped connections and 4xx replies (transient by RFC 959); a 5xx reply
  (550: no such file) is permanent and raises the `FetchError` that HTTP raises, with
  the reply code as its status;
- a download goes to `NAME.part` and continues with REST after an interruption; when the
  server answers SIZE, the length is checked, so a transfer the server cut short (it may
  still say "226 Transfer complete") is detected and continued.
"""

from __future__ import annotations

import ftplib
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from talkative_common.retries import Exhausted, Transient
from training.corpora.http import Download, FetchError, Politeness, PoliteSession


class _Transient(Exception):
    """An attempt that failed in a way worth retrying."""


def _reply_code(exc: ftplib.Error) -> int | None:
    text = str(exc)
    return int(text[:3]) if text[:3].isdigit() else None


class PoliteFTP(PoliteSession):
    """Downloads from FTP mirrors with the manners of `PoliteClient`."""

    def __init__(
        self, politeness: Politeness | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(politeness, sleep=sleep)
        self._conns: dict[str, ftplib.FTP] = {}

    def close(self) -> None:
        for host in list(self._conns):
            self._drop(host, polite=True)

    # -- connection -------------------------------------------------------------------------

    def _connect(self, netloc: str) -> ftplib.FTP:
        conn = self._conns.get(netloc)
        if conn is not None:
            return conn
        p = self.politeness
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "21")
        conn = ftplib.FTP(timeout=max(p.connect_timeout, p.read_timeout))
        try:
            conn.connect(host, int(port or 21), timeout=p.connect_timeout)
            if conn.sock is not None:
                conn.sock.settimeout(p.read_timeout)  # connect_timeout was for the handshake only
            conn.login()  # anonymous
            conn.set_pasv(True)
            conn.voidcmd("TYPE I")
        except BaseException:
            conn.close()
            raise
        self._conns[netloc] = conn
        return conn

    def _drop(self, netloc: str, *, polite: bool = False) -> None:
        conn = self._conns.pop(netloc, None)
        if conn is None:
            return
        try:
            if polite:
                conn.quit()
        except (ftplib.Error, OSError, EOFError):
            pass
        finally:
            conn.close()

    def _attempts(
        self, url: str, action: Callable[[ftplib.FTP, str], object], *, transfer: bool
    ) -> object:
        """Run `action(conn, path)` with retries; `transfer` = it opens a data connection."""
        parts = urlsplit(url)
        if parts.scheme != "ftp":
            raise ValueError(f"not an ftp:// URL: {url}")
        netloc, path = parts.netloc, unquote(parts.path)

        def attempt() -> object:
            try:
                conn = self._connect(netloc)
                if transfer:
                    self.limiter.wait(netloc)
                    self.requests_made += 1
                try:
                    return action(conn, path)
                finally:
                    if transfer:
                        self.limiter.done(netloc)
            except ftplib.error_perm as exc:
                code = _reply_code(exc)
                if code is not None and 500 <= code < 600 and code not in (530,):
                    raise FetchError(url, f"FTP {exc}", code) from exc
                self._drop(netloc)  # 530 login refused when the server is full: try later
                raise Transient(f"FTP {exc}") from exc
            except ftplib.error_temp as exc:  # 4xx: "421 too many users", "450 busy"...
                self._drop(netloc)
                raise Transient(f"FTP {exc}") from exc
            except (TimeoutError, _Transient, ftplib.Error, OSError, EOFError) as exc:
                self._drop(netloc)
                raise Transient(f"{type(exc).__name__}: {exc}") from exc

        def pause(seconds: float) -> None:
            if transfer:  # deferred in the limiter rather than slept here: any transfer waits
                self.limiter.defer(netloc, seconds)
            else:
                self._sleep(seconds)

        try:
            return self.politeness.policy().call(attempt, sleep=pause)
        except Exhausted as exc:
            reason = f"gave up after {exc.attempts} attempts: {exc.last}"
            raise FetchError(url, reason) from exc.last

    # -- public -----------------------------------------------------------------------------

    def size(self, url: str) -> int | None:
        """The size the server reports (SIZE), or None if it does not support the command."""

        def ask(conn: ftplib.FTP, path: str) -> int | None:
            try:
                return conn.size(path)
            except ftplib.error_perm as exc:
                if _reply_code(exc) in (500, 501, 502, 504):  # command not understood
                    return None
                raise

        result = self._attempts(url, ask, transfer=False)
        return result if isinstance(result, int) else None

    def download(self, url: str, dest: Path, *, chunk: int = 1 << 16) -> Download:
        """Download `url` to `dest`, continuing a `dest.part` left by an interrupted attempt."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        started_with = part.stat().st_size if part.exists() else 0
        expected = self.size(url)  # also answers 550 for a missing file, before any transfer

        def retrieve(conn: ftplib.FTP, path: str) -> None:
            have = part.stat().st_size if part.exists() else 0
            if expected is not None and have > expected:
                part.unlink()  # the file changed on the server: our prefix is not its prefix
                have = 0
            if expected is None or have < expected:
                with part.open("ab" if have else "wb") as fh:
                    conn.retrbinary(f"RETR {path}", fh.write, blocksize=chunk, rest=have or None)
            got = part.stat().st_size if part.exists() else 0
            if expected is not None and got != expected:
                raise _Transient(f"transfer cut short: {got} of {expected} bytes")

        self._attempts(url, retrieve, transfer=True)
        if not part.exists():
            part.touch()  # an empty file on the server
        part.replace(dest)
        return Download(dest, url, dest.stat().st_size, resumed=started_with > 0)

    def read(self, url: str) -> bytes:
        """A small file (a catalogue index) into memory."""
        blocks: list[bytes] = []

        def retrieve(conn: ftplib.FTP, path: str) -> None:
            blocks.clear()
            conn.retrbinary(f"RETR {path}", blocks.append)

        self._attempts(url, retrieve, transfer=True)
        return b"".join(blocks)
