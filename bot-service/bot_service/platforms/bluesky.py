"""Bluesky through the atproto SDK: mention and reply notifications in, image posts out.

Calls (XRPC, lexicons under github.com/bluesky-social/atproto/tree/main/lexicons):
- com.atproto.server.createSession (handle + app password), once; the session (access and
  refresh tokens) is kept in a 0600 file next to the state, so restarts reuse it;
  com.atproto.server.refreshSession when the access token runs out (the SDK refreshes ahead
  of the token's `exp`; a 400 ExpiredToken refreshes too; a refused refresh token logs in);
- app.bsky.notification.listNotifications (reasons mention and reply, newest first, paged
  back to our own cursor: the newest indexedAt recorded) and app.bsky.notification.updateSeen
  (with the cursor the store has durably recorded);
- the images of the post's embed (app.bsky.embed.images, or the media of
  app.bsky.embed.recordWithMedia) from the CDN, or from the author's PDS
  (com.atproto.sync.getBlob, its host from the DID document), through the allow-list;
- com.atproto.repo.uploadBlob (the card), com.atproto.repo.createRecord (app.bsky.feed.post
  with the reply's root and parent strong refs, the image embed with alt text and
  aspectRatio, and facets: the @mention of the author with the author's DID, links, tags);
- app.bsky.feed.getPosts (the mention's cid and thread root when the poll that saw it was
  another process's) and com.atproto.repo.listRecords on the bot's own repo (its reply,
  after a crash: the PDS answers for its repo at once, the AppView may lag).

A post's text is at most 300 graphemes and 3000 UTF-8 bytes (app.bsky.feed.post); graphemes
are counted with the `regex` module's \\X (Unicode extended grapheme clusters).
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import regex
from atproto import Client, Session, SessionEvent, models
from atproto_client.exceptions import (
    AtProtocolError,
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_model_as_dict
from atproto_client.request import Request
from atproto_client.utils import facet_detection
from atproto_identity.did.resolver import DidResolver
from PIL import Image
from pydantic import SecretStr

from bot_service.media import MediaDownloader
from bot_service.platforms import base
from bot_service.settings import BotSettings

log = logging.getLogger("bot_service.bluesky")
T = TypeVar("T")

POST = "app.bsky.feed.post"
REASONS = ("mention", "reply")
MAX_GRAPHEMES = 300  # app.bsky.feed.post#text maxGraphemes
MAX_TEXT_BYTES = 3000  # app.bsky.feed.post#text maxLength (UTF-8 bytes)
# app.bsky.embed.images#image: the lexicon now allows 2 MB; PDS versions before that enforce
# 1 MB (400 BlobTooLarge at createRecord). A bigger card is re-encoded as JPEG to fit.
IMAGE_MAX_BYTES = 1_000_000
PAGE = 100  # listNotifications / listRecords limit maximum
MAX_PAGES = 20  # notifications read back per poll at most (2000)
OWN_REPLY_PAGES = 5  # own posts searched for a reply after a crash (500)
TOKEN_ERRORS = ("ExpiredToken", "InvalidToken")
ELLIPSIS = "…"
_GRAPHEME = regex.compile(r"\X")


# -- text: graphemes, the 300-grapheme cut, facets ------------------------------------------


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of `text` (an emoji with its modifiers and joiners, a
    letter with its combining marks, a flag: one each)."""
    return list(_GRAPHEME.findall(text))


def post_length(text: str) -> int:
    """A post's length against the 300 limit: its graphemes, or a tenth of its UTF-8 bytes
    when that is more (the text's 3000-byte limit), so fitting 300 fits both."""
    return max(len(graphemes(text)), math.ceil(len(text.encode("utf-8")) / 10))


def cut(text: str, limit: int = MAX_GRAPHEMES) -> str:
    """`text` cut to `limit` (post_length) between grapheme clusters, with an ellipsis."""
    if post_length(text) <= limit:
        return text
    kept: list[str] = []
    for cluster in graphemes(text):
        if post_length("".join(kept) + cluster + ELLIPSIS) > limit:
            break
        kept.append(cluster)
    return "".join(kept).rstrip() + ELLIPSIS


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def facets(text: str, handle: str, did: str) -> list[models.AppBskyRichtextFacet.Main]:
    """app.bsky.richtext.facet annotations, byte offsets in UTF-8: the leading @handle as a
    mention of `did`, and the links and #tags the Bluesky app would find."""
    found: list[models.AppBskyRichtextFacet.Main] = []
    mention = f"@{handle}"
    end = 0
    if handle and did and text.startswith(mention):
        after = text[len(mention) : len(mention) + 1]
        if not after or not (after.isalnum() or after in "._-"):
            end = _utf8_offset(text, len(mention))
            found.append(
                models.AppBskyRichtextFacet.Main(
                    features=[models.AppBskyRichtextFacet.Mention(did=did)],
                    index=models.AppBskyRichtextFacet.ByteSlice(byte_start=0, byte_end=end),
                )
            )
    found += [f for f in facet_detection.detect_facets(text) if f.index.byte_start >= end]
    return sorted(found, key=lambda f: f.index.byte_start)


def fit_image(data: bytes, content_type: str) -> tuple[bytes, str, int, int]:
    """The card as uploaded (re-encoded as JPEG when over IMAGE_MAX_BYTES) and its size."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if len(data) <= IMAGE_MAX_BYTES:
            return data, content_type, width, height
        rgb = img.convert("RGB")
    for quality in (90, 80, 70, 60, 50, 40):
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= IMAGE_MAX_BYTES:
            return buf.getvalue(), "image/jpeg", width, height
    rgb.thumbnail((width // 2, height // 2))
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=60, optimize=True)
    return buf.getvalue(), "image/jpeg", rgb.width, rgb.height


def _parse_time(value: str) -> datetime:
    """An atproto datetime (RFC 3339, `Z` or an offset, any fraction) as an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    result = get_model_as_dict(value)
    return result if isinstance(result, dict) else {}


def _error_name(exc: RequestErrorBase) -> str:
    content = exc.response.content if exc.response is not None else None
    return content.error if isinstance(content, XrpcError) else ""


# -- the session file -------------------------------------------------------------------------


class SessionFile:
    """The exported session string, in a file only its owner may read (0600), replaced
    atomically, so a crash never leaves half a session."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, value: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".bluesky-session.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(value)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# -- the platform -----------------------------------------------------------------------------


class BlueskyPlatform(base.Platform):
    name = "bluesky"
    alt_text_limit = 2000  # the Bluesky app's limit on alt text (the lexicon sets none)

    def __init__(self, settings: BotSettings, client: Client | None = None) -> None:
        base.require_settings(settings, "bluesky", "bluesky_handle", "bluesky_app_password")
        self.handle = str(settings.bluesky_handle).lstrip("@")
        self._spent_until = 0.0  # a response said no request is left before this
        self._password = settings.bluesky_app_password or SecretStr("")  # checked above
        self.text_limit = min(settings.reply_limit or MAX_GRAPHEMES, MAX_GRAPHEMES)
        self.language = settings.language
        self.client = client or Client(
            base_url=settings.bluesky_service_url,
            request=Request(
                timeout=settings.platform_timeout_s, event_hooks={"response": [self._saw]}
            ),
        )
        self.client.on_session_change(self._session_changed)
        self.session_file = SessionFile(
            settings.bluesky_session_path or settings.state_path.parent / "bluesky-session"
        )
        self.media_source = settings.bluesky_media_source
        self.cdn_url = settings.bluesky_cdn_url.rstrip("/")
        self.resolver = DidResolver(
            plc_url=settings.bluesky_plc_url.rstrip("/"), timeout=settings.platform_timeout_s
        )
        cdn_host = urlsplit(self.cdn_url).hostname or ""
        default_hosts = [cdn_host] + (["bsky.network"] if self.media_source == "pds" else [])
        self.media = MediaDownloader.from_settings(settings, default_hosts)
        self.did: str | None = None
        self._lock = threading.RLock()
        self._seen_sent: str | None = None  # the cursor last sent to updateSeen
        self._pds_of: dict[str, str | None] = {}  # author DID -> PDS endpoint
        # at-uri of a mention -> (its cid, its thread root's uri and cid), from the poll.
        self._refs: dict[str, tuple[str, str, str]] = {}

    # -- session --------------------------------------------------------------------------

    def _session_changed(self, event: SessionEvent, session: Session) -> None:
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            self.session_file.save(session.export())
            log.info("bluesky session %s saved", event.value)

    def _login(self) -> None:
        """A new session from the handle and app password (createSession: 30 per 5 minutes
        and 300 a day per account, so only when no saved session works)."""
        self.client.login(self.handle, self._password.get_secret_value(), fetch_bsky_profile=False)
        log.info("bluesky: logged in as %s", self.handle)

    def _ensure_session(self) -> str:
        with self._lock:
            if self.did is None:
                saved = self.session_file.load()
                imported = False
                if saved:
                    try:
                        session = Session.decode(saved)
                        if (
                            session.handle.lower() == self.handle.lower()
                            or session.did == self.handle
                        ):
                            self.client.login(session_string=saved, fetch_bsky_profile=False)
                            imported = True
                    except (ValueError, AtProtocolError) as exc:
                        log.warning(
                            "bluesky: the saved session is unusable (%s)", type(exc).__name__
                        )
                if not imported:
                    self._guarded(self._login)
                session_now = self.client._session  # set by login
                assert session_now is not None
                self.did = session_now.did
            return self.did

    def _renew(self) -> None:
        """The access token was refused: refresh it; a refused refresh token logs in again."""
        with self._lock:
            saved = self.session_file.load()
            if saved and saved != self.client.export_session_string():
                # Another instance (a replica that held the lease) refreshed it since: the
                # tokens it saved are the live ones; ours were rotated away.
                self.client.login(session_string=saved, fetch_bsky_profile=False)
                log.info("bluesky: took the session saved by another instance")
                return
            try:
                self.client._refresh_and_set_session()
                log.info("bluesky: session refreshed")
            except (BadRequestError, UnauthorizedError) as exc:
                if isinstance(exc, BadRequestError) and _error_name(exc) not in TOKEN_ERRORS:
                    raise
                log.info(
                    "bluesky: the refresh token was refused (%s); logging in", _error_name(exc)
                )
                self._login()

    # -- calls ------------------------------------------------------------------------------

    def _saw(self, response: httpx.Response) -> None:
        """Every answer's rate-limit headers (draft-polli-ratelimit-headers, as the PDS sends
        them): `RateLimit-Remaining: 0` means the next request would get a 429, so none is
        made before `RateLimit-Reset`."""
        remaining = response.headers.get("ratelimit-remaining", "")
        reset = response.headers.get("ratelimit-reset", "")
        if response.status_code < 400 and remaining == "0" and reset.isdigit():
            self._spent_until = max(self._spent_until, float(reset))

    def _guarded(self, fn: Callable[[], T]) -> T:
        """One call, its errors as the bot's: 429 -> RateLimited, network/5xx -> unavailable."""
        if self._spent_until > time.time():
            raise base.RateLimited(self._spent_until, "Bluesky rate limit: no request left")
        try:
            return fn()
        except RateLimitExceededError as exc:
            now = time.time()
            reset = exc.reset_at.timestamp() if exc.reset_at is not None else None
            if reset is None or reset <= now:
                reset = now + (exc.retry_after if exc.retry_after is not None else 60.0)
            raise base.RateLimited(
                reset, f"Bluesky rate limit ({exc.remaining}/{exc.limit} left, {exc.policy})"
            ) from exc
        except NetworkError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (409, 413):  # the SDK files these with network errors; they are not
                raise base.PlatformError(f"Bluesky refused: {exc}") from exc
            raise base.PlatformUnavailable(f"Bluesky unavailable: {exc}") from exc
        except RequestErrorBase as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status >= 500:
                raise base.PlatformUnavailable(f"Bluesky unavailable: {exc}") from exc
            raise base.PlatformError(f"Bluesky refused: {exc}") from exc
        except AtProtocolError as exc:
            raise base.PlatformError(f"Bluesky: {exc.__class__.__name__}: {exc}") from exc

    def _call(self, fn: Callable[[], T]) -> T:
        """An authenticated call; an expired or revoked token is renewed and the call retried."""
        self._ensure_session()
        for attempt in range(3):
            try:
                return self._guarded(fn)
            except base.PlatformError as exc:
                cause = exc.__cause__
                if not isinstance(cause, (BadRequestError, UnauthorizedError)) or attempt == 2:
                    raise
                if _error_name(cause) not in TOKEN_ERRORS:
                    raise
                log.info("bluesky: %s; renewing the session", _error_name(cause))
                self._guarded(self._renew)
        raise AssertionError("unreachable")

    # -- mentions ---------------------------------------------------------------------------

    def fetch_mentions(self, cursor: str | None, limit: int) -> base.MentionBatch:
        me = self._ensure_session()
        if cursor and cursor != self._seen_sent:
            # Only what the store recorded (this cursor) is marked seen on the account.
            try:
                self._call(
                    partial(self.client.app.bsky.notification.update_seen, {"seen_at": cursor})
                )
            except (base.RateLimited, base.PlatformUnavailable):
                raise
            except base.PlatformError as exc:  # a courtesy to the account's owner, not our cursor
                log.warning("bluesky: could not mark notifications seen: %s", exc)
            self._seen_sent = cursor
        since = _parse_time(cursor) if cursor else None
        notes: list[models.AppBskyNotificationListNotifications.Notification] = []
        page: str | None = None
        for _ in range(MAX_PAGES):
            answer = self._call(
                partial(
                    self.client.app.bsky.notification.list_notifications,
                    {"limit": PAGE, "reasons": list(REASONS), "cursor": page},
                )
            )
            reached = False
            for note in answer.notifications:
                # Newest first: stop at what the last poll already recorded (equal times are
                # read again; the store ignores a mention it has).
                if since is not None and _parse_time(note.indexed_at) < since:
                    reached = True
                    break
                notes.append(note)
            if since is None or reached or not answer.cursor or not answer.notifications:
                break
            page = answer.cursor
        else:
            log.warning("bluesky: more than %d notifications since the last poll", MAX_PAGES * PAGE)
        mentions = []
        for note in reversed(notes):  # oldest first
            mention = self._mention(note, me)
            if mention is not None:
                mentions.append(mention)
        newest = max(notes, key=lambda n: _parse_time(n.indexed_at), default=None)
        return base.MentionBatch(mentions, newest.indexed_at if newest is not None else None)

    def _mention(
        self, note: models.AppBskyNotificationListNotifications.Notification, me: str
    ) -> base.Mention | None:
        if note.reason not in REASONS:
            return None
        record = _as_dict(note.record)
        if record.get("$type") != POST:
            return None
        reply = record.get("reply") or {}
        root = reply.get("root") or {}
        if root.get("uri") and root.get("cid"):
            self._refs[note.uri] = (note.cid, root["uri"], root["cid"])
        else:
            self._refs[note.uri] = (note.cid, note.uri, note.cid)
        author = note.author
        return base.Mention(
            id=note.uri,
            author_id=author.did,
            author_handle=author.handle,
            text=str(record.get("text") or ""),
            media=tuple(self._media(author.did, record.get("embed") or {})),
            own=author.did == me,
        )

    def _media(self, did: str, embed: dict[str, Any]) -> list[base.MediaRef]:
        if embed.get("$type") == "app.bsky.embed.recordWithMedia":
            embed = embed.get("media") or {}
        if embed.get("$type") != "app.bsky.embed.images":
            return []
        refs = []
        for image in embed.get("images") or []:
            blob = image.get("image") or {}
            ref = blob.get("ref")
            cid = ref.get("$link") if isinstance(ref, dict) else blob.get("cid")  # legacy blob
            if not cid:
                continue
            refs.append(
                base.MediaRef(url=self._media_url(did, str(cid)), description=image.get("alt"))
            )
        return refs

    def _media_url(self, did: str, cid: str) -> str:
        if self.media_source == "pds":
            pds = self._pds(did)
            if pds:
                return (
                    f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob"
                    f"?did={quote(did, safe='')}&cid={quote(cid, safe='')}"
                )
        # The AppView's CDN serves every indexed post's images by DID and CID.
        return f"{self.cdn_url}/img/feed_fullsize/plain/{did}/{cid}@jpeg"

    def _pds(self, did: str) -> str | None:
        if did not in self._pds_of:
            try:
                doc = self.resolver.resolve(did)
                self._pds_of[did] = doc.get_pds_endpoint() if doc is not None else None
            except Exception as exc:
                log.warning("bluesky: cannot resolve %s (%s); using the CDN", did, exc)
                return None
        return self._pds_of[did]

    def download(self, media: base.MediaRef) -> tuple[bytes, str]:
        return self.media.fetch(media.url)

    # -- replies ----------------------------------------------------------------------------

    def find_reply(self, mention: base.Mention) -> str | None:
        me = self._ensure_session()
        page: str | None = None
        for _ in range(OWN_REPLY_PAGES):
            answer = self._call(
                partial(
                    self.client.com.atproto.repo.list_records,
                    {"repo": me, "collection": POST, "limit": PAGE, "cursor": page},
                )
            )
            for rec in answer.records:
                parent = (_as_dict(rec.value).get("reply") or {}).get("parent") or {}
                if parent.get("uri") == mention.id:
                    return str(rec.uri)
            if not answer.cursor or not answer.records:
                return None
            page = answer.cursor
        return None

    def _reply_refs(self, mention: base.Mention) -> models.AppBskyFeedPost.ReplyRef:
        refs = self._refs.get(mention.id)
        if refs is None:
            answer = self._call(
                partial(self.client.app.bsky.feed.get_posts, {"uris": [mention.id]})
            )
            if not answer.posts:
                raise base.PlatformError(f"the post {mention.id} is gone")
            post = answer.posts[0]
            root = (_as_dict(post.record).get("reply") or {}).get("root") or {}
            if root.get("uri") and root.get("cid"):
                refs = (post.cid, root["uri"], root["cid"])
            else:
                refs = (post.cid, post.uri, post.cid)
        cid, root_uri, root_cid = refs
        return models.AppBskyFeedPost.ReplyRef(
            parent=models.ComAtprotoRepoStrongRef.Main(uri=mention.id, cid=cid),
            root=models.ComAtprotoRepoStrongRef.Main(uri=root_uri, cid=root_cid),
        )

    def post_reply(self, mention: base.Mention, reply: base.Reply) -> str:
        me = self._ensure_session()
        reply_ref = self._reply_refs(mention)
        embed = None
        if reply.image is not None:
            data, content_type, width, height = fit_image(reply.image, reply.image_type)
            uploaded = self._call(
                lambda: self.client.com.atproto.repo.upload_blob(
                    data, headers={"Content-Type": content_type}
                )
            )
            embed = models.AppBskyEmbedImages.Main(
                images=[
                    models.AppBskyEmbedImages.Image(
                        alt=reply.alt_text,
                        image=uploaded.blob,
                        aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(
                            width=width, height=height
                        ),
                    )
                ]
            )
        text = cut(reply.text, MAX_GRAPHEMES)
        record = models.AppBskyFeedPost.Record(
            text=text,
            created_at=self.client.get_current_time_iso(),
            reply=reply_ref,
            embed=embed,
            facets=facets(text, mention.author_handle, mention.author_id) or None,
            langs=[self.language],
        )
        reply.check()
        created = self._call(
            lambda: self.client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(repo=me, collection=POST, record=record)
            )
        )
        return str(created.uri)

    def text_length(self, text: str) -> int:
        return post_length(text)

    def close(self) -> None:
        self.media.close()
        self.client.request.close()
