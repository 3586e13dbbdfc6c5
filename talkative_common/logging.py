"""Structured logging: one JSON object per line, a request id on every request's lines.

The request id is asgi-correlation-id's: its middleware takes a sane incoming
X-Request-ID or makes one, puts it in a context variable (`request_id`) and on the
answer. The JSON lines come from the stdlib's logging with `JsonFormatter` (a
dozen lines: every module logs with `logging` and `extra=`, which structlog would only
wrap), and `RequestLog` writes one access line per request.

Bodies, headers and query strings are never logged: they can hold credentials or
personal images. Only method, path, status and timing are.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# None outside a request. Read from each request and sent back on its answer; the gateway
# also sends it on every call it makes to caption-service and textgen-service
# (gateway_service/clients.py), so one story's lines carry one id in all three services'
# logs.
request_id = correlation_id
REQUEST_ID_HEADER = "X-Request-ID"
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def sane_request_id(value: str) -> bool:
    """An incoming id is kept if it is short and printable (it goes into every log line)."""
    return 0 < len(value) <= 64 and value.isprintable()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get() or "-",
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json", service: str = "talkative") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # replaced by RequestLog below


class RequestLog:
    """ASGI middleware: a request id (asgi-correlation-id: a sane incoming X-Request-ID or
    a new one, on the answer too), then one access log line per request."""

    def __init__(self, app: ASGIApp, logger_name: str = "talkative.access") -> None:
        self.inner, self.log = app, logging.getLogger(logger_name)
        self.app = CorrelationIdMiddleware(
            self._logged,
            header_name=REQUEST_ID_HEADER,
            generator=lambda: uuid.uuid4().hex,
            validator=sane_request_id,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The middleware sets the id and leaves it set; an app called in the caller's own
        # task (httpx.ASGITransport, `talkative tell`) must not hand it back to the caller.
        token = request_id.set(None)
        try:
            await self.app(scope, receive, send)
        finally:
            request_id.reset(token)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        status, started = 500, time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, send_status)
        finally:
            self.log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
