"""uvicorn's HTTP/1.1 protocol with a deadline on request headers.

uvicorn bounds the body only through the app (talkative_common.validation.ReadBodyFirst) and
idle keep-alive connections with `timeout_keep_alive`, but a client that sends its
request head one byte at a time is never timed out: every byte cancels the keep-alive
timer. This protocol closes a connection whose request head is not complete within
`timeout_s` of connecting, or of the previous answer on a kept-alive connection. A
subclass rather than a fork: only the three hooks that arm and clear the timer change.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """An H11Protocol class (uvicorn's `http=` option) with a `timeout_s` header deadline."""

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Kept alive and no pipelined request already read: the next head is due.
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.logger.info("closed a connection whose request head was too slow")
                self.transport.close()

    return HeaderDeadlineProtocol
