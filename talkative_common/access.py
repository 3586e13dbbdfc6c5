"""Who may call a service, and how often: API keys and per-client rate limits.

Both are off by default (the laptop) and switched on by settings (docs/security.md):
- API keys: the settings hold SHA-256 digests, never keys, so a leaked `.env` or
  environment dump gives nobody access. A request presents its key in `X-API-Key`.
- Rate limits: the `limits` library's moving window, per API key (or per client
  address when there are no keys), stored in memory or in Redis for replicas.

An ASGI middleware rather than a route dependency, so a refused client is answered
before its upload is read and before it can wait for one of the service's slots.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Iterable
from typing import cast

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from talkative_common.problems import problem_response

API_KEY_HEADER = "X-API-Key"
# What every service leaves open whatever the settings: probes, metrics (restricted by
# metrics_port instead), and the API's own documentation.
ALWAYS_OPEN = re.compile(r"^/(healthz|readyz|metrics|openapi\.json|docs|redoc)(/.*)?$")


def hash_key(key: str) -> str:
    """The digest the settings hold for `key`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh API key: 32 random bytes, URL-safe."""
    return "tk_" + secrets.token_urlsafe(32)


def rate_limit_storage(uri: str) -> Storage:
    """The `limits` storage for a `rate_limit_storage` setting: memory://, or a Redis
    (redis://, rediss://, redis+unix://) through redis-py, the `redis` package of the
    gateway extra. Left to itself, `limits` would reach Redis through `coredis`, which
    nothing here installs, and refuse to start."""
    options = {"implementation": "redispy"} if uri.startswith("redis") else {}
    return cast(Storage, storage_from_string(f"async+{uri}", **options))


class ClientAccess:
    """ASGI middleware: 401 without a valid key (when keys are set), 429 over the rate.

    `open_paths` are paths (regular expressions, matched whole against GET/HEAD
    requests) anyone may read without a key, such as the web page.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        key_hashes: Iterable[str],
        rate_limit: str | None,
        storage_uri: str = "memory://",
        open_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.key_hashes = frozenset(key_hashes)
        self.limits: list[RateLimitItem] = parse_many(rate_limit) if rate_limit else []
        self.limiter = (
            MovingWindowRateLimiter(rate_limit_storage(storage_uri)) if self.limits else None
        )
        self.open_paths = [re.compile(p) for p in open_paths]

    def _is_open(self, scope: Scope) -> bool:
        path = scope["path"]
        if ALWAYS_OPEN.match(path):
            return True
        reading = scope["method"] in ("GET", "HEAD")
        return reading and any(p.fullmatch(path) for p in self.open_paths)

    def _presented_key(self, scope: Scope) -> str | None:
        wanted = API_KEY_HEADER.lower().encode()
        for name, value in scope.get("headers", []):
            if name == wanted:
                return value.decode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or self._is_open(scope):
            # OPTIONS: a CORS preflight carries no credentials by design.
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        identity = f"address:{client[0] if client else 'unknown'}"
        if self.key_hashes:
            key = self._presented_key(scope)
            # A digest lookup: the time it takes says nothing about any stored key.
            digest = hash_key(key) if key else None
            if digest is None or digest not in self.key_hashes:
                why = "missing" if key is None else "not valid"
                refuse = problem_response(
                    401,
                    f"The {API_KEY_HEADER} header is {why}; this gateway needs an API key.",
                    title="API key required",
                    headers={"WWW-Authenticate": API_KEY_HEADER},
                    instance=scope["path"],
                )
                await refuse(scope, receive, send)
                return
            identity = f"key:{digest[:16]}"  # a key's identity, not the key
        if self.limiter is not None:
            for item in self.limits:
                if not await self.limiter.hit(item, identity):
                    stats = await self.limiter.get_window_stats(item, identity)
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    refuse = problem_response(
                        429,
                        f"Too many requests: at most {item} per client; try again in {wait} s.",
                        title="Too many requests",
                        headers={"Retry-After": str(wait)},
                        instance=scope["path"],
                    )
                    await refuse(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class OriginCheck:
    """ASGI middleware, on with a CORS allow-list: a state-changing request sent by a page
    of another site is refused with 403.

    CORS only stops a foreign page from *reading* an answer; a cross-site multipart POST
    is a "simple" request that browsers send without asking, so the work would still be
    done (and paid for). Requests without an `Origin` header (curl, the bot, servers) and
    requests from this site itself (Origin matching Host) pass.
    """

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        same_site = origin.split("://", 1)[-1] == host
        if origin and origin != "null" and ("*" in self.allowed or origin in self.allowed):
            same_site = True
        if origin and not same_site:
            refuse = problem_response(
                403,
                f"Requests from pages of {origin} are not allowed; this API serves pages of "
                f"{', '.join(sorted(self.allowed))} and its own.",
                title="Origin not allowed",
                instance=scope["path"],
            )
            await refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)
