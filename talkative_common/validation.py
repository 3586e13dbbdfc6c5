"""Request validation helpers: readable validation errors, a body size limit, and bodies read
whole, within a deadline, before a request may take one of the service's slots."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import field_validator
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkative_common.asgi import HttpMiddleware


def _whole_number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def whole_numbers(*fields: str) -> Any:
    """A strict model's validator for its integer `fields`: 5.0 is the integer 5 in JSON
    (and in the JSON Schema of the OpenAPI document), so it is taken as one; 5.5, "5"
    and true are still refused. Use as `_whole = whole_numbers("seed")` in the class."""
    return field_validator(*fields, mode="before")(_whole_number)


def describe_validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors -> [{field, message}] a person can act on."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
        field = ".".join(loc) or "body"
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "missing":
            message = "this field is required"
        elif err.get("type") == "extra_forbidden":
            message = "unknown field; check the spelling against the API documentation"
        elif err.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        out.append({"field": field, "message": message})
    return out


def only_form_fields(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: 422 for a multipart field the route does not take.

    FastAPI ignores form fields it was not told about, so a misspelt option
    (`max_token=5`) would silently get the default; naming it is kinder.
    """
    known = frozenset(names)

    async def check(request: Request) -> None:
        # A request check at the HTTP edge (a route dependency on form fields), like
        # FastAPI's own validation: a Problem here, not a domain error.
        from talkative_common.problems import Problem

        unknown = sorted(set((await request.form()).keys()) - known)
        if unknown:
            message = "unknown field; check the spelling against the API documentation"
            raise Problem(
                422,
                f"Unknown form field(s) {', '.join(unknown)}; this endpoint takes "
                f"{', '.join(sorted(known))}.",
                errors=[{"field": name, "message": message} for name in unknown],
            )

    return check


class BodySizeLimit(HttpMiddleware):
    """ASGI middleware: 413 for bodies over the endpoint's limit, by header or while
    streaming, before FastAPI parses anything, so an oversized body is never buffered whole.

    The limit is the endpoint's, not the sender's choice: an endpoint that takes a photo
    (multipart in the OpenAPI document) allows `max_bytes`; every other endpoint takes
    JSON (prompts and knobs) and allows `max_json_bytes`, whatever Content-Type a client
    declares, so ten megabytes sent as text/plain to /v1/generations are refused unread.
    Without `openapi` the Content-Type decides.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_json_bytes: int | None = None,
        openapi: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.max_json_bytes = min(max_bytes, max_json_bytes or max_bytes)
        self.openapi = openapi
        self._uploads: list[re.Pattern[str]] | None = None

    def _takes_upload(self, path: str, media: bytes) -> bool:
        if self.openapi is None:
            return not (media == b"application/json" or media.endswith(b"+json"))
        if self._uploads is None:  # the document is complete by the first request
            from starlette.routing import compile_path

            self._uploads = [
                compile_path(template)[0]
                for template, item in self.openapi().get("paths", {}).items()
                if any(
                    "multipart/form-data" in op.get("requestBody", {}).get("content", {})
                    for op in item.values()
                    if isinstance(op, dict)
                )
            ]
        return any(pattern.match(path) for pattern in self._uploads)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        from talkative_common.problems import problem_response

        headers = dict(scope.get("headers", []))
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        is_json = not self._takes_upload(str(scope.get("path", "")), media)
        limit = self.max_json_bytes if is_json else self.max_bytes
        declared = headers.get(b"content-length")
        too_big = problem_response(
            413,
            f"The request body is larger than {limit:,} bytes"
            + (" (the limit for JSON bodies, which this endpoint takes)." if is_json else "."),
            instance=scope.get("path"),
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_big(scope, receive, send)
            return
        received, answered = 0, False

        async def guarded_send(message: Message) -> None:
            if not answered:  # after our 413, whatever the app sends is dropped
                await send(message)

        async def limited() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not answered:
                    answered = True
                    await too_big(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not answered:
                raise


class ReadBodyFirst(HttpMiddleware):
    """ASGI middleware: the whole body arrives, within `timeout_s`, before the app sees it.

    Placed outside the concurrency bound, so a client that trickles its upload holds no
    slot while it does (eight such clients used to lock everyone out), and one that has
    not finished in time gets 408 instead of holding its connection. The body size was
    already bounded by BodySizeLimit, outside this one.

    One client address may be sending at most `max_per_client` bodies at once; more get
    429 at once, so a single address cannot tie up the server with slow uploads.
    """

    DRAIN_S = 1.0  # how long a refused upload is read before the refusal is sent

    def __init__(self, app: ASGIApp, timeout_s: float, max_per_client: int = 16) -> None:
        self.app, self.timeout_s, self.max_per_client = app, timeout_s, max_per_client
        self.uploading: dict[str, int] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length", b"")
        has_body = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
        if not has_body:
            await self.app(scope, receive, send)
            return
        from talkative_common.problems import problem_response

        client = scope.get("client")
        address = client[0] if client else "unknown"
        if self.uploading.get(address, 0) >= self.max_per_client:
            # Read (and drop) what arrives within DRAIN_S first: a client still sending
            # when the connection closes would see a reset, not this answer.
            try:
                drained = await asyncio.wait_for(self._drain(receive), timeout=self.DRAIN_S)
            except TimeoutError:
                drained = False
            busy = problem_response(
                429,
                f"Your address is already sending {self.max_per_client} request bodies; "
                "wait for one to finish.",
                instance=scope.get("path"),
                headers={"Retry-After": "1"} | ({} if drained else {"Connection": "close"}),
            )
            await busy(scope, receive, send)
            return
        self.uploading[address] = self.uploading.get(address, 0) + 1
        try:
            body = await self._read_body(receive)
        except TimeoutError:
            slow = problem_response(
                408,
                f"The request body did not arrive within {self.timeout_s:g} s.",
                instance=scope.get("path"),
                headers={"Connection": "close"},
            )
            await slow(scope, receive, send)
            return
        finally:  # only while the body arrives: a slow model does not count against a client
            left = self.uploading.pop(address) - 1
            if left:
                self.uploading[address] = left
        if body is None:
            return  # the client left; nobody to answer
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Receive) -> bool:
        """Read the body to its end, keeping nothing; False if the client left."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            if not message.get("more_body", False):
                return True

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, None if the client left, TimeoutError past the deadline."""
        chunks: list[bytes] = []

        async def read_all() -> bool:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return False
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return True

        complete = await asyncio.wait_for(read_all(), timeout=self.timeout_s)
        return b"".join(chunks) if complete else None
