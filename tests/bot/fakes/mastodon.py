"""A Mastodon instance as far as the bot's client library sees it (docs.joinmastodon.org).

Endpoints: GET /api/v1/instance, /api/v2/instance, /api/v1/accounts/verify_credentials,
/api/v1/notifications (types[], since_id, limit; newest first), POST /api/v2/media (202,
url null), POST /api/v1/statuses (form, media_ids[], Idempotency-Key honoured as Mastodon
does), GET /api/v1/statuses/:id/context; media files under /system/media/. Bearer token
required. `rate_limit(path_prefix, seconds)` answers the next call there with 429 and
X-RateLimit-Reset (ISO 8601), as Mastodon does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.bot.fakes.network import FakeNetwork

TOKEN = "test-token"
BOT_ID = "1"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FakeMastodon(FakeNetwork):
    media_path = "/system/media"

    def __init__(self) -> None:
        super().__init__(first_id=100)
        self.statuses: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, str] = {}
        self.idempotency_enabled = True  # Mastodon honours Idempotency-Key; tests may turn it off
        self.armed: dict[str, float] = {}  # path prefix -> seconds until reset, once hit
        self.resets: dict[str, float] = {}  # path prefix -> reset time (epoch seconds)
        self.fail_reply_to: set[str] = set()  # POST replies to these ids get 422
        self.app = self._build()

    # -- test helpers -----------------------------------------------------------------------

    def account(self, acct: str, account_id: str | None = None) -> dict[str, Any]:
        account_id = account_id or str(abs(hash(acct)) % 10**8 + 1000)
        return {
            "id": account_id,
            "username": acct,
            "acct": acct,
            "display_name": acct.title(),
            "url": f"{self.base_url}/@{acct}",
            "created_at": _iso(0),
            "locked": False,
            "bot": acct == "talkative",
            "note": "",
            "avatar": "",
            "header": "",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": 0,
            "emojis": [],
            "fields": [],
        }

    def mention(self, acct: str, text: str = "", media_urls: tuple[str, ...] = ()) -> str:
        """A status by `acct` that mentions the bot, and its notification; returns the status id."""
        with self.lock:
            sid = str(next(self.ids))
            account = self.account(acct) if acct != "talkative" else self.account(acct, BOT_ID)
            attachments: list[dict[str, Any]] = [
                {
                    "id": str(next(self.ids)),
                    "type": "image",
                    "url": url,
                    "preview_url": url,
                    "remote_url": None,
                    "description": None,
                    "blurhash": None,
                    "meta": {},
                }
                for url in media_urls
            ]
            status = self._status(sid, account, f"<p>@talkative {text}</p>", None, attachments)
            self.statuses[sid] = status
            nid = str(next(self.ids))
            self.notifications.append(
                {
                    "id": nid,
                    "type": "mention",
                    "created_at": status["created_at"],
                    "account": account,
                    "status": status,
                }
            )
            return sid

    def replies_to(self, sid: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["in_reply_to_id"] == sid]

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for _, m, p, _ in self.requests if m == method and p.startswith(prefix))

    def rate_limit(self, prefix: str, seconds: float) -> None:
        """The next call under `prefix` gets 429, with a reset `seconds` later; so does every
        call before that reset. The reset time lands in `resets[prefix]`."""
        self.armed[prefix] = seconds

    def _status(
        self,
        sid: str,
        account: dict[str, Any],
        content: str,
        in_reply_to: str | None,
        media: list[dict[str, Any]],
        visibility: str = "public",
    ) -> dict[str, Any]:
        return {
            "id": sid,
            "uri": f"{self.base_url}/statuses/{sid}",
            "url": f"{self.base_url}/@{account['acct']}/{sid}",
            "created_at": _iso(time.time()),
            "account": account,
            "content": content,
            "visibility": visibility,
            "sensitive": False,
            "spoiler_text": "",
            "media_attachments": media,
            "mentions": [],
            "tags": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "in_reply_to_id": in_reply_to,
            "in_reply_to_account_id": None,
            "reblog": None,
            "language": "en",
        }

    # -- the API ----------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path, now = request.url.path, time.time()
            for prefix in [p for p in fake.armed if path.startswith(p)]:
                fake.resets[prefix] = now + fake.armed.pop(prefix)
            for prefix, reset in list(fake.resets.items()):
                if path.startswith(prefix) and now < reset:  # every call until the reset: 429
                    fake.requests.append((now, request.method, path, 429))
                    return JSONResponse(
                        {"error": "Too many requests"},
                        status_code=429,
                        headers={
                            "X-RateLimit-Limit": "300",
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": _iso(reset),
                        },
                    )
            public = path.startswith(("/system/media/", "/api/v1/instance", "/api/v2/instance"))
            if not public and request.headers.get("authorization") != f"Bearer {TOKEN}":
                fake.requests.append((now, request.method, path, 401))
                return JSONResponse({"error": "The access token is invalid"}, status_code=401)
            response: Response = await call_next(request)
            fake.requests.append((now, request.method, path, response.status_code))
            return response

        @app.get("/api/v1/instance")
        async def instance_v1() -> dict[str, Any]:
            return {
                "uri": "127.0.0.1",
                "title": "Fake instance",
                "short_description": "",
                "description": "",
                "email": "admin@example.org",
                "version": "4.2.0",
                "urls": {},
                "stats": {"user_count": 2, "status_count": 0, "domain_count": 1},
                "languages": ["en"],
                "registrations": False,
                "approval_required": False,
                "invites_enabled": False,
                "configuration": {
                    "statuses": {"max_characters": 500, "max_media_attachments": 4},
                    "media_attachments": {"image_size_limit": 16777216},
                },
                "contact_account": None,
                "rules": [],
            }

        @app.get("/api/v2/instance")
        async def instance_v2() -> dict[str, Any]:
            return {"domain": "127.0.0.1", "title": "Fake instance", "version": "4.2.0"}

        @app.get("/api/v1/accounts/verify_credentials")
        async def me() -> dict[str, Any]:
            return fake.account("talkative", BOT_ID)

        @app.get("/api/v1/notifications")
        async def notifications(request: Request) -> list[dict[str, Any]]:
            q = request.query_params
            types = q.getlist("types[]")
            since = int(q.get("since_id") or 0)
            min_id = q.get("min_id")
            limit = min(int(q.get("limit") or 40), 80)
            notes = [
                n
                for n in fake.notifications
                if int(n["id"]) > max(since, int(min_id or 0)) and (not types or n["type"] in types)
            ]
            notes.sort(key=lambda n: int(n["id"]))
            # since_id: the newest page; min_id: the page just after min_id. Newest first.
            page = notes[:limit] if min_id else notes[-limit:]
            return sorted(page, key=lambda n: -int(n["id"]))

        @app.post("/api/v2/media", status_code=202)
        async def media(request: Request) -> dict[str, Any]:
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return JSONResponse({"error": "file is missing"}, status_code=422)  # type: ignore[return-value]
            data = await upload.read()
            mid = str(next(fake.ids))
            item: dict[str, Any] = {
                "id": mid,
                "type": "image",
                "url": None,
                "preview_url": f"{fake.base_url}/system/media/{mid}",
                "remote_url": None,
                "description": form.get("description"),
                "blurhash": None,
                "meta": {},
                "content_type": upload.content_type,
                "size": len(data),
                "data": data,
            }
            fake.media[mid] = item
            return {k: v for k, v in item.items() if k not in ("data", "content_type", "size")}

        @app.post("/api/v1/statuses")
        async def post_status(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            form = await request.form()
            reply_to = form.get("in_reply_to_id")
            with fake.lock:
                if fake.idempotency_enabled and key and key in fake.idempotency:
                    return JSONResponse(fake.statuses[fake.idempotency[key]])
                if reply_to in fake.fail_reply_to:
                    return JSONResponse({"error": "Validation failed"}, status_code=422)
                text = str(form.get("status") or "")
                if len(text) > 500:
                    return JSONResponse(
                        {"error": "Validation failed: Text character limit of 500 exceeded"},
                        status_code=422,
                    )
                media = [fake.media[str(m)] for m in form.getlist("media_ids[]")]
                shown = [
                    {k: v for k, v in m.items() if k not in ("data", "content_type", "size")}
                    for m in media
                ]
                sid = str(next(fake.ids))
                status = fake._status(
                    sid,
                    fake.account("talkative", BOT_ID),
                    text,
                    str(reply_to) if reply_to else None,
                    shown,
                    str(form.get("visibility") or "public"),
                )
                status["_media"] = media  # kept for assertions; not part of the wire format
                fake.statuses[sid] = status
                if key:
                    fake.idempotency[key] = sid
            return JSONResponse({k: v for k, v in status.items() if k != "_media"})

        @app.get("/api/v1/statuses/{sid}/context")
        async def context(sid: str) -> Response:
            if sid not in fake.statuses:
                return JSONResponse({"error": "Record not found"}, status_code=404)
            desc = [
                {k: v for k, v in s.items() if k != "_media"}
                for s in fake.statuses.values()
                if s["in_reply_to_id"] == sid
            ]
            return JSONResponse({"ancestors": [], "descendants": desc})

        fake.serve_files(app)

        return app
