"""X API v1.1 as python-twitter calls it (developer.x.com standard v1.1 reference).

GET  /1.1/account/verify_credentials.json
GET  /1.1/statuses/mentions_timeline.json   (since_id, count; newest first)
GET  /1.1/statuses/user_timeline.json       (user_id, since_id, count)
POST /1.1/statuses/update.json              (status, in_reply_to_status_id, media_ids)
POST upload /1.1/media/upload.json          (multipart `media`)
POST upload /1.1/media/metadata/create.json (JSON {media_id, alt_text: {text}})
Photos are served under /media/ (the pbs.twimg.com stand-in). Every API call must carry an
OAuth 1.0a Authorization header. `rate_limit(path, seconds)` answers 429 with code 88 and
x-rate-limit-reset (epoch seconds) until the reset.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.bot.fakes.network import FakeNetwork

BOT_ID = 4242


class FakeTwitter(FakeNetwork):
    def __init__(self) -> None:
        super().__init__(first_id=10000)
        self.statuses: dict[int, dict[str, Any]] = {}
        self.media: dict[int, dict[str, Any]] = {}
        self.armed: dict[str, float] = {}
        self.resets: dict[str, int] = {}
        self.app = self._build()

    def user(self, screen_name: str) -> dict[str, Any]:
        uid = BOT_ID if screen_name == "talkative_bot" else abs(hash(screen_name)) % 10**6 + 10
        return {"id": uid, "id_str": str(uid), "screen_name": screen_name, "name": screen_name}

    def mention(self, screen_name: str, text: str = "", photos: tuple[str, ...] = ()) -> int:
        with self.lock:
            sid = next(self.ids)
            media = [
                {
                    "id": next(self.ids),
                    "type": "photo",
                    "media_url_https": url,
                    "media_url": url,
                    "url": "https://t.co/x",
                }
                for url in photos
            ]
            status = self._status(sid, self.user(screen_name), f"@talkative_bot {text}", None)
            if media:
                status["extended_entities"] = {"media": media}
                status["entities"]["media"] = media
            self.statuses[sid] = status
            return sid

    def replies_to(self, sid: int) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["in_reply_to_status_id"] == sid]

    def count(self, method: str, path: str) -> int:
        return sum(1 for _, m, p, _ in self.requests if m == method and p == path)

    def rate_limit(self, path: str, seconds: float) -> None:
        """The next call to `path` gets 429, with a reset `seconds` later; so does every call
        before that reset. The reset time lands in `resets[path]`."""
        self.armed[path] = seconds

    @staticmethod
    def _status(sid: int, user: dict[str, Any], text: str, reply_to: int | None) -> dict[str, Any]:
        return {
            "id": sid,
            "id_str": str(sid),
            "created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()),
            "full_text": text,
            "text": text,
            "user": user,
            "in_reply_to_status_id": reply_to,
            "in_reply_to_status_id_str": str(reply_to) if reply_to else None,
            "entities": {"hashtags": [], "urls": [], "user_mentions": []},
        }

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        def errors(status: int, code: int, message: str, **headers: str) -> JSONResponse:
            body = {"errors": [{"code": code, "message": message}]}
            return JSONResponse(body, status_code=status, headers=headers or None)

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path, now = request.url.path, time.time()
            if path in fake.armed:
                fake.resets[path] = int(now + fake.armed.pop(path)) + 1  # whole seconds, as X
            reset = fake.resets.get(path)
            if reset is not None and now < reset:
                fake.requests.append((now, request.method, path, 429))
                return errors(
                    429,
                    88,
                    "Rate limit exceeded",
                    **{
                        "x-rate-limit-limit": "75",
                        "x-rate-limit-remaining": "0",
                        "x-rate-limit-reset": str(reset),
                    },
                )
            auth = request.headers.get("authorization", "")
            if not path.startswith("/media/") and not (
                auth.startswith("OAuth ") and "oauth_signature=" in auth
            ):
                fake.requests.append((now, request.method, path, 401))
                return errors(401, 32, "Could not authenticate you.")
            response: Response = await call_next(request)
            fake.requests.append((now, request.method, path, response.status_code))
            return response

        @app.get("/1.1/account/verify_credentials.json")
        async def me() -> dict[str, Any]:
            return fake.user("talkative_bot")

        @app.get("/1.1/statuses/mentions_timeline.json")
        async def mentions(request: Request) -> list[dict[str, Any]]:
            q = request.query_params
            since = int(q.get("since_id") or 0)
            count = min(int(q.get("count") or 20), 200)
            found = [
                s for s in fake.statuses.values() if s["id"] > since and s["user"]["id"] != BOT_ID
            ]
            return sorted(found, key=lambda s: -s["id"])[:count]

        @app.get("/1.1/statuses/user_timeline.json")
        async def user_timeline(request: Request) -> list[dict[str, Any]]:
            q = request.query_params
            uid = int(q.get("user_id") or 0)
            since = int(q.get("since_id") or 0)
            own = [s for s in fake.statuses.values() if s["user"]["id"] == uid and s["id"] > since]
            own = sorted(own, key=lambda s: -s["id"])[: int(q.get("count") or 20)]
            return [{k: v for k, v in s.items() if k != "_media"} for s in own]

        @app.post("/1.1/media/upload.json")
        async def upload(request: Request) -> Response:
            form = await request.form()
            media = form.get("media")
            if media is None or isinstance(media, str):
                return errors(400, 38, "media parameter is missing.")
            data = await media.read()
            mid = next(fake.ids)
            fake.media[mid] = {"data": data, "alt_text": None}
            return JSONResponse(
                {"media_id": mid, "media_id_string": str(mid), "size": len(data), "image": {}}
            )

        @app.post("/1.1/media/metadata/create.json")
        async def metadata(request: Request) -> Response:
            body = json.loads(await request.body())
            mid = int(body["media_id"])
            if mid not in fake.media:
                return errors(400, 324, "Invalid media id.")
            text = body.get("alt_text", {}).get("text", "")
            if len(text) > 1000:
                return errors(400, 44, "alt_text is longer than 1000 characters.")
            fake.media[mid]["alt_text"] = text
            return Response(status_code=200)

        @app.post("/1.1/statuses/update.json")
        async def update(request: Request) -> Response:
            form = await request.form()
            text = str(form.get("status") or "")
            if len(text) > 280:
                return errors(403, 186, "Tweet needs to be a bit shorter.")
            reply_to = form.get("in_reply_to_status_id")
            ids = str(form.get("media_ids") or request.query_params.get("media_ids") or "")
            media_ids = [int(x) for x in ids.split(",") if x]
            with fake.lock:
                sid = next(fake.ids)
                status = fake._status(
                    sid, fake.user("talkative_bot"), text, int(str(reply_to)) if reply_to else None
                )
                status["_media"] = [fake.media[m] for m in media_ids]
                fake.statuses[sid] = status
            return JSONResponse({k: v for k, v in status.items() if k != "_media"})

        fake.serve_files(app)

        return app
