"""The X API v2 endpoints the `x` adapter calls, as X documents them (docs.x.com/x-api).

GET  /2/users/me                          (docs.x.com/x-api/users, "Get my User")
GET  /2/users/:id/mentions                (docs.x.com/x-api/posts/user-mention-timeline-by-user-id:
     since_id, max_results 5..100, pagination_token; newest first; `includes.media` and
     `includes.users` for the expansions asked; `meta` {result_count, newest_id, oldest_id,
     next_token})
GET  /2/users/:id/tweets                  (docs.x.com/x-api/posts, "User Posts timeline")
POST /2/media/upload/initialize           (docs.x.com/x-api/media/initialize-media-upload)
POST /2/media/upload/:id/append           (docs.x.com/x-api/media/append-media-upload: multipart
     `media` + `segment_index`, as the X samples send it)
POST /2/media/upload/:id/finalize         (docs.x.com/x-api/media, "Finalize media upload")
GET  /2/media/upload?command=STATUS       (docs.x.com/x-api/media/get-media-upload-status:
     processing_info.state pending -> in_progress -> succeeded | failed, check_after_secs)
POST /2/media/metadata                    (docs.x.com/x-api/media/create-media-metadata:
     {id, metadata: {alt_text: {text <= 1000}}})
POST /2/tweets                            (docs.x.com/x-api/posts/create-or-edit-post: {text,
     reply: {in_reply_to_tweet_id}, media: {media_ids}}; 201 {data: {id, text}})
Photos are served under /media/ (the pbs.twimg.com stand-in).

Every API call must carry a valid OAuth 1.0a signature (HMAC-SHA1 over the method, URL,
query and oauth_* parameters: RFC 5849 §3.4, which X's "Authorizing a request" follows),
checked here with oauthlib's server-side functions. Errors follow X's shapes: problems
{title, detail, type, status} ("An HTTP Problem Details object, as defined in IETF RFC
7807", on every v2 endpoint page) and, for 429, the `errors` array of
docs.x.com/fundamentals/rate-limits. Every answer carries x-rate-limit-limit/-remaining/
-reset (same page).

Switches for the tests: `rate_limit(path, s)` (429 with the reset), `exhaust(path, s)`
(the next answer says remaining 0; a call before the reset gets 429), `revoke()` (401, as
for a revoked or regenerated token), `processing_checks` (STATUS answers in_progress that
many times), `processing_fails`, `lose_post_answers` (the post is made, the answer is a
503), `timeline_lag` (the own-posts timeline does not yet show the newest posts: X's
timelines are eventually consistent).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from oauthlib.oauth1.rfc5849 import signature, utils
from twitter.twitter_utils import calc_expected_status_length

from tests.bot.fakes.network import FakeNetwork

BOT_ID = "4242"
API_KEY, API_SECRET = "x-api-key", "x-api-secret-must-never-be-logged"
ACCESS_TOKEN = "4242-x-access-token-must-never-be-logged"
ACCESS_TOKEN_SECRET = "x-access-token-secret-must-never-be-logged"
SECRETS = (API_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET)
WINDOW_S = 900  # X's usual 15-minute window
LIMIT = 300


def problem(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    """X's problem shape (RFC 7807), as every v2 endpoint page documents its errors."""
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return JSONResponse(body, status_code=status, headers=headers or None)


class FakeX(FakeNetwork):
    def __init__(self) -> None:
        super().__init__(first_id=1900000000000000000)
        self.tweets: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.users: dict[str, str] = {BOT_ID: "talkative_bot"}
        self.queries: list[tuple[str, str, dict[str, str]]] = []
        self.armed: dict[str, float] = {}
        self.resets: dict[str, int] = {}
        self.exhausted: dict[str, float] = {}
        self.revoked = False
        self.processing_checks = 0
        self.processing_fails = False
        self.lose_post_answers = 0
        self.timeline_lag = 0
        self.app = self._build()

    # -- the world --------------------------------------------------------------------------

    def user_id(self, username: str) -> str:
        for uid, name in self.users.items():
            if name == username:
                return uid
        uid = str(next(self.ids))
        self.users[uid] = username
        return uid

    def mention(self, username: str, text: str = "", photos: tuple[str, ...] = ()) -> str:
        with self.lock:
            tid = str(next(self.ids))
            keys = []
            for url in photos:
                key = f"3_{next(self.ids)}"
                self.media[key] = {"media_key": key, "type": "photo", "url": url}
                keys.append(key)
            self.tweets[tid] = {
                "id": tid,
                "text": f"@talkative_bot {text}".strip(),
                "author_id": self.user_id(username),
                "media_keys": keys,
                "reply_to": None,
                "_media": [],
            }
            return tid

    def replies_to(self, tid: str) -> list[dict[str, Any]]:
        return [t for t in self.tweets.values() if t["reply_to"] == tid]

    def count(self, method: str, path: str) -> int:
        return sum(1 for _, m, p, _ in self.requests if m == method and p == path)

    def query(self, method: str, path: str) -> list[dict[str, str]]:
        """The query parameters of each call to `path`, in order."""
        return [q for m, p, q in self.queries if m == method and p == path]

    def calls(self, method: str, path: str) -> list[tuple[float, int]]:
        return [(t, st) for t, m, p, st in self.requests if m == method and p == path]

    def rate_limit(self, path: str, seconds: float) -> None:
        """The next call to `path` gets 429 with a reset `seconds` later, and so does every
        call before that reset. The reset lands in `resets[path]`."""
        self.armed[path] = seconds

    def exhaust(self, path: str, seconds: float) -> None:
        """The next answer from `path` says x-rate-limit-remaining 0, reset `seconds` later;
        a call before that reset is refused with 429, as X would."""
        self.exhausted[path] = seconds

    def revoke(self, revoked: bool = True) -> None:
        """The access token stops working (revoked or regenerated in the portal): 401."""
        self.revoked = revoked

    # -- the server -------------------------------------------------------------------------

    def _authorized(self, request: Request, body: bytes) -> bool:
        """RFC 5849 §3.4.1: HMAC-SHA1 over the method, the base URI and the parameters of
        the query, the Authorization header and a form-encoded body (not JSON, not
        multipart)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return False
        oauth = dict(utils.parse_authorization_header(header))
        form = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        params = signature.collect_parameters(
            uri_query=request.url.query,
            body=body.decode() if form else None,
            headers={"Authorization": header},
        )
        base = signature.signature_base_string(
            request.method,
            signature.base_string_uri(str(request.url)),
            signature.normalize_parameters(params),
        )
        expected = signature.sign_hmac_sha1(base, API_SECRET, ACCESS_TOKEN_SECRET)
        return (
            oauth.get("oauth_consumer_key") == API_KEY
            and oauth.get("oauth_token") == ACCESS_TOKEN
            and oauth.get("oauth_signature_method") == "HMAC-SHA1"
            and unquote(oauth.get("oauth_signature", "")) == expected
        )

    def _visible(self, tid: str) -> dict[str, Any]:
        """A post as v2 shows it, with the fields the expansions asked for added later."""
        t = self.tweets[tid]
        return {"id": t["id"], "text": t["text"], "edit_history_tweet_ids": [t["id"]]}

    def _page(self, found: list[dict[str, Any]], request: Request) -> Response:
        """A timeline page: newest first, max_results 5..100, pagination_token, includes."""
        q = request.query_params
        size = int(q.get("max_results") or 10)
        if not 5 <= size <= 100:
            return problem(400, "Invalid Request", "max_results must be between 5 and 100")
        expansions = set(filter(None, (q.get("expansions") or "").split(",")))
        media_fields = set(filter(None, (q.get("media.fields") or "").split(",")))
        found = sorted(found, key=lambda t: -int(t["id"]))
        start = int(q.get("pagination_token") or 0)
        page = found[start : start + size]
        if not page:
            return JSONResponse({"meta": {"result_count": 0}})
        data, media, users = [], {}, {}
        for t in page:
            item = self._visible(t["id"])
            if "author_id" in expansions:
                item["author_id"] = t["author_id"]
                users[t["author_id"]] = {
                    "id": t["author_id"],
                    "name": self.users[t["author_id"]],
                    "username": self.users[t["author_id"]],
                }
            if "attachments.media_keys" in expansions and t["media_keys"]:
                item["attachments"] = {"media_keys": t["media_keys"]}
                for key in t["media_keys"]:
                    m = self.media[key]
                    shown = {"media_key": key, "type": m["type"]}
                    if "url" in media_fields:  # a photo's url only when media.fields asks
                        shown["url"] = m["url"]
                    media[key] = shown
            if "referenced_tweets.id" in expansions and t["reply_to"]:
                item["referenced_tweets"] = [{"type": "replied_to", "id": t["reply_to"]}]
            data.append(item)
        body: dict[str, Any] = {
            "data": data,
            "meta": {
                "result_count": len(data),
                "newest_id": data[0]["id"],
                "oldest_id": data[-1]["id"],
            },
        }
        if start + size < len(found):
            body["meta"]["next_token"] = str(start + size)
        includes = {}
        if media:
            includes["media"] = list(media.values())
        if users:
            includes["users"] = list(users.values())
        if includes:
            body["includes"] = includes
        return JSONResponse(body)

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path, now = request.url.path, time.time()

            def answer(response: Response) -> Response:
                fake.requests.append((now, request.method, path, response.status_code))
                fake.queries.append((request.method, path, dict(request.query_params)))
                return response

            if path.startswith("/media/"):
                return answer(await call_next(request))
            body = await request.body()
            if path in fake.armed:
                fake.resets[path] = int(now + fake.armed.pop(path)) + 1  # whole seconds
            reset = fake.resets.get(path)
            if reset is not None and now < reset:
                # docs.x.com/fundamentals/rate-limits: 429 and the errors array, with headers
                return answer(
                    JSONResponse(
                        {"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
                        status_code=429,
                        headers={
                            "x-rate-limit-limit": str(LIMIT),
                            "x-rate-limit-remaining": "0",
                            "x-rate-limit-reset": str(reset),
                        },
                    )
                )
            if fake.revoked or not fake._authorized(request, body):
                # A request X cannot authenticate (bad signature, revoked token): 401, a
                # problem {"title": "Unauthorized", ..., "status": 401}
                return answer(problem(401, "Unauthorized", "Unauthorized"))
            response: Response = await call_next(request)
            window_end = int(now) + WINDOW_S
            remaining = str(LIMIT - 1)
            if path in fake.exhausted:
                window_end = int(now + fake.exhausted.pop(path)) + 1
                remaining = "0"
                fake.resets[path] = window_end  # X refuses what comes before the reset
            response.headers["x-rate-limit-limit"] = str(LIMIT)
            response.headers["x-rate-limit-remaining"] = remaining
            response.headers["x-rate-limit-reset"] = str(window_end)
            return answer(response)

        @app.get("/2/users/me")
        async def me() -> dict[str, Any]:
            return {"data": {"id": BOT_ID, "name": "Talkative", "username": "talkative_bot"}}

        @app.get("/2/users/{uid}/mentions")
        async def mentions(uid: str, request: Request) -> Response:
            since = int(request.query_params.get("since_id") or 0)
            handle = "@" + fake.users[uid]
            found = [
                t
                for t in fake.tweets.values()
                if int(t["id"]) > since and handle in t["text"] and t["author_id"] != uid
            ]
            return fake._page(found, request)

        @app.get("/2/users/{uid}/tweets")
        async def own_posts(uid: str, request: Request) -> Response:
            since = int(request.query_params.get("since_id") or 0)
            found = [t for t in fake.tweets.values() if t["author_id"] == uid]
            found = [t for t in found if int(t["id"]) > since]
            if fake.timeline_lag:  # the newest posts are not in the timeline yet
                fake.timeline_lag -= 1
                found = sorted(found, key=lambda t: int(t["id"]))[:-1]
            return fake._page(found, request)

        @app.post("/2/media/upload/initialize")
        async def initialize(request: Request) -> Response:
            body = await request.json()
            if body.get("media_type") not in ("image/png", "image/jpeg", "image/webp"):
                return problem(400, "Invalid Request", "media_type is not supported")
            total = int(body.get("total_bytes") or 0)
            if not 0 < total <= 5_242_880:
                return problem(400, "Invalid Request", "total_bytes must be 1..5242880")
            mid = str(next(fake.ids))
            fake.media[mid] = {
                "media_key": f"3_{mid}",
                "type": "photo",
                "total": total,
                "chunks": {},
                "state": None,
                "checks": 0,
                "alt_text": None,
                "media_type": body["media_type"],
                "category": body.get("media_category"),
            }
            return JSONResponse(
                {"data": {"id": mid, "media_key": f"3_{mid}", "expires_after_secs": 86400}}
            )

        @app.post("/2/media/upload/{mid}/append")
        async def append(mid: str, request: Request) -> Response:
            if mid not in fake.media:
                return problem(400, "Invalid Request", "unknown media id")
            form = await request.form()
            chunk, index = form.get("media"), form.get("segment_index")
            if chunk is None or isinstance(chunk, str) or index is None:
                return problem(400, "Invalid Request", "media and segment_index are required")
            fake.media[mid]["chunks"][int(str(index))] = await chunk.read()
            return JSONResponse({"data": {"expires_at": int(time.time()) + 86400}})

        @app.post("/2/media/upload/{mid}/finalize")
        async def finalize(mid: str) -> Response:
            m = fake.media.get(mid)
            if m is None:
                return problem(400, "Invalid Request", "unknown media id")
            data = b"".join(m["chunks"][i] for i in sorted(m["chunks"]))
            if len(data) != m["total"]:
                return problem(400, "Invalid Request", "segments do not add up to total_bytes")
            m["data"] = data
            out: dict[str, Any] = {
                "id": mid,
                "media_key": m["media_key"],
                "size": len(data),
                "expires_after_secs": 86400,
            }
            if fake.processing_checks or fake.processing_fails:
                m["state"] = "pending"
                out["processing_info"] = {"state": "pending", "check_after_secs": 1}
            else:
                m["state"] = "succeeded"
            return JSONResponse({"data": out})

        @app.get("/2/media/upload")
        async def status(request: Request) -> Response:
            q = request.query_params
            m = fake.media.get(q.get("media_id") or "")
            if q.get("command") != "STATUS" or m is None or m["state"] is None:
                return problem(400, "Invalid Request", "command=STATUS and a media_id needed")
            if m["checks"] < fake.processing_checks:
                m["checks"] += 1
                m["state"] = "in_progress"
                info: dict[str, Any] = {
                    "state": "in_progress",
                    "check_after_secs": 1,
                    "progress_percent": 50,
                }
            elif fake.processing_fails:
                m["state"] = "failed"
                info = {
                    "state": "failed",
                    "progress_percent": 50,
                    "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported image"},
                }
            else:
                m["state"] = "succeeded"
                info = {"state": "succeeded", "progress_percent": 100}
            return JSONResponse(
                {
                    "data": {
                        "id": q["media_id"],
                        "media_key": m["media_key"],
                        "processing_info": info,
                    }
                }
            )

        @app.post("/2/media/metadata")
        async def metadata(request: Request) -> Response:
            body = await request.json()
            m = fake.media.get(str(body.get("id")))
            if m is None:
                return problem(400, "Invalid Request", "unknown media id")
            text = ((body.get("metadata") or {}).get("alt_text") or {}).get("text", "")
            if len(text) > 1000:
                return problem(400, "Invalid Request", "alt_text is longer than 1000 characters")
            m["alt_text"] = text
            return JSONResponse(
                {"data": {"id": body["id"], "associated_metadata": {"alt_text": {"text": text}}}}
            )

        @app.post("/2/tweets")
        async def create(request: Request) -> Response:
            body = await request.json()
            text = str(body.get("text") or "")
            if calc_expected_status_length(text) > 280:
                return problem(403, "Forbidden", "Your Tweet text is too long.")
            media_ids = (body.get("media") or {}).get("media_ids") or []
            for mid in media_ids:
                if fake.media.get(mid, {}).get("state") != "succeeded":
                    return problem(400, "Invalid Request", f"media {mid} is not ready")
            reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
            with fake.lock:
                if any(
                    t["author_id"] == BOT_ID and t["text"] == text for t in fake.tweets.values()
                ):
                    # The answer X gives (github.com/akrherz/iembot/issues/163, 2026)
                    return problem(
                        403,
                        "Forbidden",
                        "You are not allowed to create a Tweet with duplicate content.",
                    )
                tid = str(next(fake.ids))
                fake.tweets[tid] = {
                    "id": tid,
                    "text": text,
                    "author_id": BOT_ID,
                    "media_keys": [fake.media[m]["media_key"] for m in media_ids],
                    "reply_to": reply_to,
                    "_media": [fake.media[m] for m in media_ids],
                }
            if fake.lose_post_answers:  # made, but the answer is lost on the way
                fake.lose_post_answers -= 1
                return problem(503, "Service Unavailable", "Service Unavailable")
            return JSONResponse(
                {"data": {"id": tid, "text": text, "edit_history_tweet_ids": [tid]}},
                status_code=201,
            )

        fake.serve_files(app)

        return app
