"""Request validation helpers: readable validation errors and a request body size limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over `max_bytes`, by header or while streaming.

    Checked before FastAPI parses anything, so an oversized upload is never buffered whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from services.problems import problem_response

        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_big = problem_response(
            413,
            f"The request body is larger than {self.max_bytes:,} bytes.",
            instance=scope.get("path"),
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
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
                if received > self.max_bytes and not answered:
                    answered = True
                    await too_big(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not answered:
                raise
