"""A Bluesky PDS + AppView + CDN + PLC directory as far as the bot's atproto client sees it.

XRPC over HTTP at /xrpc/<nsid> (atproto.com/specs/xrpc): queries are GET with query
parameters (arrays repeated), procedures POST with a JSON body (uploadBlob: the raw bytes);
errors are `{"error": <name>, "message": ...}` with the status the spec gives them. Each
handler cites the lexicon (github.com/bluesky-social/atproto, lexicons/...) it follows.

Served: com.atproto.server.createSession / refreshSession, app.bsky.notification.
listNotifications / updateSeen, app.bsky.feed.getPosts, com.atproto.repo.uploadBlob /
createRecord / listRecords, com.atproto.sync.getBlob, the CDN's
/img/feed_fullsize/plain/<did>/<cid>@jpeg, and the PLC directory's GET /<did>.

Where it is simpler than Bluesky (docs/bot.md says so too): one server plays PDS, AppView,
CDN and PLC directory; a new post is indexed (in notifications, getPosts) at once; the
CDN serves the stored bytes as they are (Bluesky's re-encodes them to JPEG); JWTs are
well-formed but unsigned, and the record validation covers what the bot sends, not every
rule of every lexicon.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import regex
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

BOT_HANDLE = "talkative.test"
BOT_DID = "did:plc:talkativebotfake0000000000"
PASSWORD = "fake-app-pass-word"  # an app password's shape: xxxx-xxxx-xxxx-xxxx
POST = "app.bsky.feed.post"
_GRAPHEME = regex.compile(r"\X")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cid(data: bytes, codec: int) -> str:
    """A CIDv1 (sha2-256) in base32: codec 0x55 raw (blobs), 0x71 dag-cbor (records)."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _error(status: int, name: str, message: str, **headers: str) -> JSONResponse:
    # atproto.com/specs/xrpc#error-responses: a JSON body with `error` and `message`.
    return JSONResponse({"error": name, "message": message}, status_code=status, headers=headers)


class FakeBluesky:
    def __init__(self) -> None:
        self.base_url = ""  # set once served
        self.lock = threading.Lock()
        self.clock = itertools.count(1)
        self.requests: list[tuple[float, str, str, int]] = []  # (time, method, nsid/path, status)
        self.handles: dict[str, str] = {BOT_DID: BOT_HANDLE}  # did -> handle
        self.pds_of: dict[str, str] = {}  # did -> PDS URL in its DID document (default: us)
        self.posts: dict[str, dict[str, Any]] = {}  # at-uri -> {uri, cid, did, record, indexedAt}
        self.notifications: list[dict[str, Any]] = []  # the bot's, oldest first
        self.seen_at: str | None = None
        self.blobs: dict[tuple[str, str], tuple[bytes, str]] = {}  # (did, cid) -> (data, mime)
        self.access: dict[str, tuple[str, float]] = {}  # access JWT -> (did, exp)
        self.refresh: dict[str, str] = {}  # refresh JWT -> did (rotated: used ones removed)
        self.expired: set[str] = set()  # access tokens the server now calls expired
        self.issued: list[str] = []  # every token handed out (none may appear in a log)
        self.access_ttl_s = 7200.0  # bsky.social's access tokens live two hours
        self.max_upload_bytes = 50 * 1024 * 1024  # the PDS's blob upload limit
        self.image_max_bytes = 1_000_000  # app.bsky.embed.images#image maxSize (older PDSes)
        self.armed: dict[str, float] = {}  # nsid -> seconds until reset, once hit
        self.resets: dict[str, float] = {}  # nsid -> reset time (epoch seconds)
        self.exhausting: dict[str, float] = {}  # nsid -> seconds: its next answer says 0 left
        self.spent: dict[str, float] = {}  # nsid -> the reset that answer gave
        self.app = self._build()

    # -- test helpers -----------------------------------------------------------------------

    def user(self, handle: str) -> str:
        """The DID of `handle` (created on first use)."""
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.handles.setdefault(did, handle)
        return did

    def _now_iso(self) -> str:
        # Strictly increasing index times (like the AppView's), a millisecond apart.
        return _iso(time.time() + next(self.clock) / 1000)

    def _profile(self, did: str) -> dict[str, Any]:
        # app.bsky.actor.defs#profileView (did and handle required).
        return {"did": did, "handle": self.handles[did], "displayName": self.handles[did]}

    def add_blob(self, did: str, data: bytes, mime: str = "image/jpeg") -> dict[str, Any]:
        cid = _cid(data, 0x55)
        self.blobs[(did, cid)] = (data, mime)
        # lexicon blob type (atproto.com/specs/data-model#blob-type).
        return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}

    def _add_post(self, did: str, record: dict[str, Any]) -> dict[str, Any]:
        rkey = _b64url(secrets.token_bytes(9)).lower().replace("-", "2").replace("_", "3")[:13]
        uri = f"at://{did}/{POST}/{rkey}"
        body = json.dumps(record, sort_keys=True).encode()
        post = {
            "uri": uri,
            "cid": _cid(body + uri.encode(), 0x71),
            "did": did,
            "record": record,
            "indexedAt": self._now_iso(),
            "seq": len(self.posts),
        }
        self.posts[uri] = post
        return post

    def mention(
        self,
        handle: str,
        text: str = "",
        images: tuple[bytes, ...] = (),
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        reason: str = "mention",
        image_mime: str = "image/jpeg",
    ) -> str:
        """A post by `handle` naming the bot (or replying to it), with its notification."""
        with self.lock:
            did = self.user(handle) if handle != BOT_HANDLE else BOT_DID
            record: dict[str, Any] = {
                "$type": POST,
                "text": text,
                "createdAt": _iso(time.time()),
                "langs": ["en"],
            }
            if reason == "mention":  # the @handle, and its facet (app.bsky.richtext.facet)
                record["text"] = f"@{BOT_HANDLE} {text}".strip()
                end = len(f"@{BOT_HANDLE}".encode())
                record["facets"] = [
                    {
                        "index": {"byteStart": 0, "byteEnd": end},
                        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": BOT_DID}],
                    }
                ]
            if images:
                media = {
                    "$type": "app.bsky.embed.images",
                    "images": [
                        {"alt": f"photo {i}", "image": self.add_blob(did, data, image_mime)}
                        for i, data in enumerate(images)
                    ],
                }
                if quote is not None:  # app.bsky.embed.recordWithMedia: a quote with images
                    q = self.posts[quote]
                    record["embed"] = {
                        "$type": "app.bsky.embed.recordWithMedia",
                        "record": {
                            "$type": "app.bsky.embed.record",
                            "record": {"uri": q["uri"], "cid": q["cid"]},
                        },
                        "media": media,
                    }
                else:
                    record["embed"] = media
            if reply_to is not None:
                parent = self.posts[reply_to]
                root = (parent["record"].get("reply") or {}).get("root") or {
                    "uri": parent["uri"],
                    "cid": parent["cid"],
                }
                record["reply"] = {
                    "root": root,
                    "parent": {"uri": parent["uri"], "cid": parent["cid"]},
                }
            post = self._add_post(did, record)
            self._notify(post, reason)
            return str(post["uri"])

    def post_as(self, handle: str, text: str) -> str:
        """A plain post, no notification (the start of a thread)."""
        with self.lock:
            did = BOT_DID if handle == BOT_HANDLE else self.user(handle)
            record = {"$type": POST, "text": text, "createdAt": _iso(time.time())}
            return str(self._add_post(did, record)["uri"])

    def _notify(self, post: dict[str, Any], reason: str) -> None:
        # app.bsky.notification.listNotifications#notification.
        self.notifications.append(
            {
                "uri": post["uri"],
                "cid": post["cid"],
                "author": self._profile(post["did"]),
                "reason": reason,
                "record": post["record"],
                "isRead": False,
                "indexedAt": post["indexedAt"],
                "labels": [],
            }
        )

    def notify_other(self, handle: str, reason: str = "like") -> None:
        """A notification the bot must ignore (a like of its post, a follow, ...)."""
        with self.lock:
            did = self.user(handle)
            record = {"$type": "app.bsky.feed.like", "createdAt": _iso(time.time())}
            self.notifications.append(
                {
                    "uri": f"at://{did}/app.bsky.feed.like/{next(self.clock)}",
                    "cid": _cid(json.dumps(record).encode(), 0x71),
                    "author": self._profile(did),
                    "reason": reason,
                    "record": record,
                    "isRead": False,
                    "indexedAt": self._now_iso(),
                }
            )

    def replies_to(self, uri: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.posts.values()
            if ((p["record"].get("reply") or {}).get("parent") or {}).get("uri") == uri
        ]

    def count(self, method: str, nsid: str) -> int:
        return sum(1 for _, m, p, _ in self.requests if m == method and p == nsid)

    def statuses(self, nsid: str) -> list[int]:
        return [st for _, _, p, st in self.requests if p == nsid]

    def rate_limit(self, nsid: str, seconds: float) -> None:
        """The next call of `nsid` gets 429 with a reset `seconds` later; so does every call
        of it before that reset. The reset time lands in `resets[nsid]`."""
        self.armed[nsid] = seconds

    def exhaust(self, nsid: str, seconds: float) -> None:
        """The next successful answer of `nsid` says `RateLimit-Remaining: 0`, with a reset
        `seconds` later (in `spent[nsid]`): a polite client asks nothing before then."""
        self.exhausting[nsid] = seconds

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (as the PDS says when its
        clock passes `exp`): the next call with one gets 400 ExpiredToken."""
        self.expired |= set(self.access)

    def revoke_refresh_tokens(self) -> None:
        self.refresh.clear()

    # -- tokens -----------------------------------------------------------------------------

    def _jwt(self, payload: dict[str, Any]) -> str:
        header = {"typ": "at+jwt", "alg": "ES256K"}
        parts = [json.dumps(header).encode(), json.dumps(payload).encode()]
        return ".".join([*(_b64url(p) for p in parts), _b64url(secrets.token_bytes(32))])

    def _session(self, did: str) -> dict[str, Any]:
        # com.atproto.server.createSession / refreshSession output.
        now = int(time.time())
        aud = "did:web:127.0.0.1"
        exp = now + int(self.access_ttl_s)
        access = self._jwt(
            {"scope": "com.atproto.appPass", "sub": did, "aud": aud, "iat": now, "exp": exp}
        )
        refresh = self._jwt(
            {
                "scope": "com.atproto.refresh",
                "sub": did,
                "aud": aud,
                "jti": secrets.token_urlsafe(16),
                "iat": now,
                "exp": now + 90 * 86400,
            }
        )
        self.access[access] = (did, exp)
        self.issued += [access, refresh]
        self.refresh[refresh] = did
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handles[did],
            "did": did,
            "didDoc": self._did_doc(did),
            "active": True,
        }

    def _did_doc(self, did: str) -> dict[str, Any]:
        # A did:plc document (web.plc.directory/spec/v0.1/did-plc): the PDS is #atproto_pds.
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{self.handles.get(did, did)}"],
            "verificationMethod": [
                {
                    "id": f"{did}#atproto",
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": "zQ3shfake",
                }
            ],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": self.pds_of.get(did, self.base_url),
                }
            ],
        }

    # -- record validation (app.bsky.feed.post and what it references) ---------------------

    def _invalid_post(self, did: str, record: Any) -> JSONResponse | None:
        def bad(why: str) -> JSONResponse:
            return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {why}")

        if not isinstance(record, dict) or record.get("$type") != POST:
            return bad("Record/$type must be app.bsky.feed.post")
        text = record.get("text")
        if not isinstance(text, str):
            return bad("Record/text must be a string")
        # lexicons/app/bsky/feed/post.json: text maxLength 3000 (bytes), maxGraphemes 300.
        if len(text.encode()) > 3000:
            return bad("Record/text must not be longer than 3000 characters")
        if len(_GRAPHEME.findall(text)) > 300:
            return bad("Record/text must not be longer than 300 graphemes")
        if not isinstance(record.get("createdAt"), str):
            return bad('Record must have the property "createdAt"')
        reply = record.get("reply")
        if reply is not None:  # #replyRef: root and parent, each a com.atproto.repo.strongRef
            for key in ("root", "parent"):
                ref = reply.get(key) if isinstance(reply, dict) else None
                if not isinstance(ref, dict) or not str(ref.get("uri", "")).startswith("at://"):
                    return bad(f"Record/reply/{key}/uri must be an at-uri")
                if not isinstance(ref.get("cid"), str) or not ref["cid"].startswith("b"):
                    return bad(f"Record/reply/{key}/cid must be a cid string")
        n_bytes = len(text.encode())
        for facet in record.get("facets") or []:  # app.bsky.richtext.facet
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
                return bad("Record/facets/index must be a byteSlice")
            if end > n_bytes:
                return bad("Record/facets/index/byteEnd is past the end of the text")
            for feature in facet.get("features") or []:
                kind = feature.get("$type")
                if kind == "app.bsky.richtext.facet#mention" and not str(
                    feature.get("did", "")
                ).startswith("did:"):
                    return bad("Record/facets/features/did must be a did")
                if kind not in (
                    "app.bsky.richtext.facet#mention",
                    "app.bsky.richtext.facet#link",
                    "app.bsky.richtext.facet#tag",
                ):
                    return bad(f"Record/facets/features has an unknown type {kind}")
        embed = record.get("embed")
        if embed is not None:
            if embed.get("$type") != "app.bsky.embed.images":
                return bad("Record/embed: only app.bsky.embed.images is served here")
            images = embed.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                return bad("Record/embed/images must have 1 to 4 images")
            for image in images:
                if not isinstance(image.get("alt"), str):
                    return bad('Record/embed/images/0 must have the property "alt"')
                ratio = image.get("aspectRatio")
                if ratio is not None and not (
                    isinstance(ratio.get("width"), int)
                    and isinstance(ratio.get("height"), int)
                    and ratio["width"] >= 1
                    and ratio["height"] >= 1
                ):
                    return bad("Record/embed/images/0/aspectRatio: width and height >= 1")
                blob = image.get("image") or {}
                cid = str((blob.get("ref") or {}).get("$link"))
                if (did, cid) not in self.blobs:
                    return _error(400, "InvalidRequest", f"Could not find blob: {cid}")
                data, mime = self.blobs[(did, cid)]
                # #image: accept image/*; maxSize. The PDS checks both when the record is
                # written (uploadBlob's own description says so), with these error names.
                if not mime.startswith("image/"):
                    return _error(400, "InvalidMimeType", f"Wrong type of file: {mime}")
                if len(data) > self.image_max_bytes:
                    return _error(
                        400,
                        "BlobTooLarge",
                        f"This file is too large. It is {len(data)} bytes but the maximum "
                        f"size is {self.image_max_bytes} bytes.",
                    )
        return None

    # -- the API ----------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self
        public = {
            "com.atproto.server.createSession",
            "com.atproto.server.refreshSession",  # authenticated by the refresh token itself
            "com.atproto.sync.getBlob",
            "com.atproto.repo.listRecords",  # "Does not require auth" (its lexicon)
        }

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path, now = request.url.path, time.time()
            nsid = path.removeprefix("/xrpc/") if path.startswith("/xrpc/") else path
            for armed in [n for n in fake.armed if n == nsid]:
                fake.resets[armed] = now + fake.armed.pop(armed)
            reset = fake.resets.get(nsid)
            if reset is not None and now < reset:
                # docs.bsky.app/docs/advanced-guides/rate-limits: 429, with the
                # draft-polli-ratelimit-headers the PDS sends (reset: epoch seconds).
                fake.requests.append((now, request.method, nsid, 429))
                return _error(
                    429,
                    "RateLimitExceeded",
                    "Rate Limit Exceeded",
                    **{
                        "RateLimit-Limit": "3000",
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(int(reset + 0.999)),
                        "RateLimit-Policy": "3000;w=300",
                    },
                )
            if path.startswith("/xrpc/") and nsid not in public:
                auth = request.headers.get("authorization", "")
                token = auth.removeprefix("Bearer ")
                entry = fake.access.get(token)
                if not auth.startswith("Bearer ") or entry is None:
                    status, name, msg = 401, "AuthenticationRequired", "Authentication Required"
                    if token in fake.refresh:
                        status, name, msg = 400, "InvalidToken", "Invalid token type"
                    fake.requests.append((now, request.method, nsid, status))
                    return _error(status, name, msg)
                if token in fake.expired or entry[1] < now:
                    # The PDS's answer to an access token past its time (observed in
                    # MarshalX/atproto#158, Preloading/TwitterAPIBridge#2).
                    fake.requests.append((now, request.method, nsid, 400))
                    return _error(400, "ExpiredToken", "Token has expired")
                request.state.did = entry[0]
            response: Response = await call_next(request)
            fake.requests.append((now, request.method, nsid, response.status_code))
            if path.startswith("/xrpc/"):
                # Every answer carries the limit it counts against (the PDS's global one).
                remaining, reset = "2999", now + 300
                if nsid in fake.exhausting and response.status_code < 400:
                    remaining, reset = "0", now + fake.exhausting.pop(nsid)
                    fake.spent[nsid] = reset
                response.headers["RateLimit-Limit"] = "3000"
                response.headers["RateLimit-Remaining"] = remaining
                response.headers["RateLimit-Reset"] = str(int(reset + 0.999))
                response.headers["RateLimit-Policy"] = "3000;w=300"
            return response

        # lexicons/com/atproto/server/createSession.json: identifier + password in; the
        # session out; 401 AuthenticationRequired for a wrong password.
        @app.post("/xrpc/com.atproto.server.createSession")
        async def create_session(request: Request) -> Response:
            body = await request.json()
            ident = str(body.get("identifier", "")).lower()
            did = next((d for d, h in fake.handles.items() if ident in (h, d)), None)
            if did != BOT_DID or body.get("password") != PASSWORD:
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            with fake.lock:
                return JSONResponse(fake._session(did))

        # lexicons/com/atproto/server/refreshSession.json: the refresh JWT as bearer; a new
        # pair out; the old refresh token is revoked (rotation): reused, it gets
        # 400 ExpiredToken "Token has been revoked" (MarshalX/atproto#158).
        @app.post("/xrpc/com.atproto.server.refreshSession")
        async def refresh_session(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            with fake.lock:
                if token in fake.access:
                    return _error(400, "InvalidToken", "Invalid token type")
                did = fake.refresh.pop(token, None)
                if did is None:
                    return _error(400, "ExpiredToken", "Token has been revoked")
                return JSONResponse(fake._session(did))

        # lexicons/app/bsky/notification/listNotifications.json: limit 1..100 (50), cursor,
        # reasons[]; newest first; `cursor` only when there is an older page.
        @app.get("/xrpc/app.bsky.notification.listNotifications")
        async def list_notifications(request: Request) -> Response:
            q = request.query_params
            try:
                limit = int(q.get("limit") or 50)
            except ValueError:
                return _error(400, "InvalidRequest", "limit must be an integer")
            if not 1 <= limit <= 100:
                return _error(400, "InvalidRequest", "limit must be between 1 and 100")
            if q.get("seenAt"):  # "Deprecated: this parameter is unsupported and will error"
                return _error(400, "InvalidRequest", "seenAt is not supported")
            reasons = q.getlist("reasons")
            with fake.lock:
                notes = [n for n in fake.notifications if not reasons or n["reason"] in reasons]
                notes = sorted(notes, key=lambda n: n["indexedAt"], reverse=True)
                start = int(q.get("cursor") or 0)
                page = notes[start : start + limit]
                seen = fake.seen_at
                shown = [{**n, "isRead": bool(seen and n["indexedAt"] <= seen)} for n in page]
            out: dict[str, Any] = {"notifications": shown, "priority": False}
            if start + limit < len(notes):
                out["cursor"] = str(start + limit)
            if seen:
                out["seenAt"] = seen
            return JSONResponse(out)

        # lexicons/app/bsky/notification/updateSeen.json: {seenAt: datetime}, no output.
        @app.post("/xrpc/app.bsky.notification.updateSeen")
        async def update_seen(request: Request) -> Response:
            body = await request.json()
            if not isinstance(body.get("seenAt"), str):
                return _error(400, "InvalidRequest", 'Input must have the property "seenAt"')
            fake.seen_at = body["seenAt"]
            return Response(status_code=200)

        # lexicons/app/bsky/feed/getPosts.json: uris[] (at most 25) -> posts (postView), the
        # ones not found left out.
        @app.get("/xrpc/app.bsky.feed.getPosts")
        async def get_posts(request: Request) -> Response:
            uris = request.query_params.getlist("uris")
            if len(uris) > 25:
                return _error(400, "InvalidRequest", "uris must not have more than 25 elements")
            posts = [
                {
                    "uri": p["uri"],
                    "cid": p["cid"],
                    "author": fake._profile(p["did"]),
                    "record": p["record"],
                    "indexedAt": p["indexedAt"],
                    "replyCount": len(fake.replies_to(p["uri"])),
                    "labels": [],
                }
                for u in uris
                if (p := fake.posts.get(u)) is not None
            ]
            return JSONResponse({"posts": posts})

        # lexicons/com/atproto/repo/uploadBlob.json: the raw bytes, Content-Type their type;
        # {blob} out. Over the PDS's upload limit: 413 PayloadTooLarge (the xrpc server's
        # body limit).
        @app.post("/xrpc/com.atproto.repo.uploadBlob")
        async def upload_blob(request: Request) -> Response:
            data = await request.body()
            if len(data) > fake.max_upload_bytes:
                return _error(413, "PayloadTooLarge", "request entity too large")
            declared = request.headers.get("content-type", "application/octet-stream")
            # The PDS sniffs the type from the bytes; the header is a fallback.
            if data.startswith(b"\x89PNG\r\n\x1a\n"):
                mime = "image/png"
            elif data.startswith(b"\xff\xd8\xff"):
                mime = "image/jpeg"
            else:
                mime = declared
            with fake.lock:
                return JSONResponse({"blob": fake.add_blob(request.state.did, data, mime)})

        # lexicons/com/atproto/repo/createRecord.json: repo, collection, record (rkey,
        # validate, swapCommit optional); {uri, cid, commit, validationStatus} out.
        @app.post("/xrpc/com.atproto.repo.createRecord")
        async def create_record(request: Request) -> Response:
            body = await request.json()
            did = request.state.did
            if body.get("repo") not in (did, fake.handles[did]):
                return _error(400, "InvalidRequest", "Input/repo must be the authenticated repo")
            if body.get("collection") != POST:
                return _error(400, "InvalidRequest", "only app.bsky.feed.post is served here")
            with fake.lock:
                invalid = fake._invalid_post(did, body.get("record"))
                if invalid is not None:
                    return invalid
                post = fake._add_post(did, body["record"])
                reply = body["record"].get("reply")
                if reply:  # a reply to a post of the bot notifies the bot (reason "reply")
                    parent = fake.posts.get(reply["parent"]["uri"])
                    if parent is not None and parent["did"] == BOT_DID and did != BOT_DID:
                        fake._notify(post, "reply")
                commit = {"cid": _cid(post["cid"].encode(), 0x71), "rev": str(post["seq"])}
                return JSONResponse(
                    {
                        "uri": post["uri"],
                        "cid": post["cid"],
                        "commit": commit,
                        "validationStatus": "valid",
                    }
                )

        # lexicons/com/atproto/repo/listRecords.json: repo, collection, limit 1..100 (50),
        # cursor, reverse; newest first unless reverse.
        @app.get("/xrpc/com.atproto.repo.listRecords")
        async def list_records(request: Request) -> Response:
            q = request.query_params
            repo = q.get("repo")
            did = next((d for d, h in fake.handles.items() if repo in (h, d)), None)
            if did is None:
                return _error(400, "InvalidRequest", f"Could not find repo: {repo}")
            limit = int(q.get("limit") or 50)
            if not 1 <= limit <= 100:
                return _error(400, "InvalidRequest", "limit must be between 1 and 100")
            with fake.lock:
                mine = [
                    p
                    for p in fake.posts.values()
                    if p["did"] == did and q.get("collection") == POST
                ]
            mine.sort(key=lambda p: p["seq"], reverse=q.get("reverse") != "true")
            start = int(q.get("cursor") or 0)
            page = mine[start : start + limit]
            out: dict[str, Any] = {
                "records": [{"uri": p["uri"], "cid": p["cid"], "value": p["record"]} for p in page]
            }
            if start + limit < len(mine):
                out["cursor"] = str(start + limit)
            return JSONResponse(out)

        # lexicons/com/atproto/sync/getBlob.json: did, cid -> the bytes; 400 BlobNotFound.
        @app.get("/xrpc/com.atproto.sync.getBlob")
        async def get_blob(did: str, cid: str) -> Response:
            blob = fake.blobs.get((did, cid))
            if blob is None:
                return _error(400, "BlobNotFound", "Blob not found")
            return Response(blob[0], media_type=blob[1])

        # The AppView's image CDN (app.bsky.embed.images#viewImage fullsize URLs).
        @app.get("/img/feed_fullsize/plain/{did}/{name}")
        async def cdn(did: str, name: str) -> Response:
            blob = fake.blobs.get((did, name.split("@")[0]))
            if blob is None:
                return Response(status_code=404)
            return Response(blob[0], media_type=blob[1])

        # The PLC directory: GET /<did> -> its DID document.
        @app.get("/{did}")
        async def plc(did: str) -> Response:
            if not did.startswith("did:plc:") or did not in fake.handles:
                return JSONResponse({"message": f"DID not registered: {did}"}, status_code=404)
            return JSONResponse(fake._did_doc(did))

        return app
