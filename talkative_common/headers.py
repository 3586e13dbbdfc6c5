"""Security headers on every response of every service, the web page included.

- `X-Content-Type-Options: nosniff`: a browser never guesses a type we did not send;
- `Referrer-Policy: no-referrer`: story ids in URLs do not leak to other sites;
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no framing (clickjacking);
- `Content-Security-Policy`: the page loads scripts, styles and fonts from this origin
  only; images also from `blob:` (the photo preview) and `data:`. /docs and /redoc are
  left without a CSP, since FastAPI's Swagger UI and ReDoc load from a CDN.

The server software is not announced: each service runs uvicorn with
`server_header=False`.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from talkative_common.asgi import HttpMiddleware

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
NO_CSP = ("/docs", "/redoc")


class SecurityHeaders(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = list(ALWAYS)
        if not scope["path"].startswith(NO_CSP):
            extra.append((b"content-security-policy", CSP.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
