"""X through the API v2 and the official SDK (`xdk`), OAuth 1.0a user context.

Calls (https://docs.x.com/x-api):
- GET  /2/users/me                         who am I (id, username)
- GET  /2/users/:id/mentions               since_id cursor, max_results=100, pages with
  pagination_token; expansions=attachments.media_keys,author_id; media.fields=url,type;
  user.fields=username
- POST /2/media/upload/initialize          {media_type, total_bytes, media_category}
- POST /2/media/upload/:id/append          multipart `media` + `segment_index` (by hand, see
  `_append`)
- POST /2/media/upload/:id/finalize        then, while processing_info.state is pending or
- GET  /2/media/upload?command=STATUS      in_progress, STATUS after check_after_secs
- POST /2/media/metadata                   {id, metadata: {alt_text: {text}}}
- POST /2/tweets                           {text, reply: {in_reply_to_tweet_id},
  media: {media_ids}}
- GET  /2/users/:id/tweets                 own posts since the mention (after a crash, or
  when X calls a reply "duplicate content")

Rate limits: every answer carries x-rate-limit-limit/-remaining/-reset for its endpoint.
A 429 raises RateLimited(reset); an endpoint whose `remaining` reached 0 is not called
again before its reset (RateLimited at once, no request spent on a refusal). A 401 is a
credentials problem, reported as such (the bot pauses, nothing is dropped or charged).
See docs/bot.md ("X") for why xdk and why OAuth 1.0a.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import xdk
from pydantic import ValidationError
from twitter.twitter_utils import calc_expected_status_length
from xdk.oauth1_auth import OAuth1

from bot_service.media import MediaDownloader
from bot_service.platforms import base
from bot_service.settings import BotSettings

log = logging.getLogger("bot_service")

DEFAULT_MEDIA_HOSTS = ["pbs.twimg.com", "ton.twimg.com"]
PAGE = 100  # max_results of the timelines: 5..100
CHUNK_BYTES = 1 << 20  # one APPEND segment (X takes up to 5 MB per segment)
PROCESSING_STATES = ("pending", "in_progress")


class CredentialsRefused(base.PlatformUnavailable):
    """401: X refused the credentials (revoked or regenerated token, wrong key). Not the
    mention's fault, so the bot pauses and charges nothing; a person has to fix it."""


class DuplicateContent(base.PlatformError):
    """403 "duplicate content": X says this text was already posted by this account."""


class _TimeoutSession(requests.Session):
    """xdk calls requests without a timeout (a stalled connection would hang the bot)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


def _secret(value: Any) -> str:
    return str(value.get_secret_value()) if value is not None else ""


def _problem(response: requests.Response) -> str:
    """The explanation in an error answer: a problem ({title, detail, type, status}) or
    an `errors` array ([{message, code}] or problems); never the request itself."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(body, dict):
        return response.reason or ""
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            parts += [str(err[k]) for k in ("message", "title", "detail") if err.get(k)]
    return ": ".join(dict.fromkeys(parts)) or response.reason or ""


def _dump(model: Any) -> dict[str, Any]:
    """xdk answers pydantic models; the adapter reads plain dicts."""
    if hasattr(model, "model_dump"):
        return dict(model.model_dump(exclude_none=True, by_alias=True))
    return dict(model or {})


class XPlatform(base.Platform):
    name = "x"
    alt_text_limit = 1000

    def __init__(
        self,
        settings: BotSettings,
        client: xdk.Client | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client is None:
            base.require_settings(
                settings,
                "x",
                "x_api_key",
                "x_api_secret",
                "x_access_token",
                "x_access_token_secret",
                hint="OAuth 1.0a user context; docs/bot.md, X",
            )
        if client is None:
            auth = OAuth1(
                api_key=_secret(settings.x_api_key),
                api_secret=_secret(settings.x_api_secret),
                callback="oob",
                access_token=_secret(settings.x_access_token),
                access_token_secret=_secret(settings.x_access_token_secret),
            )
            client = xdk.Client(base_url=settings.x_base_url.rstrip("/"), auth=auth)
        self.client = client
        session = _TimeoutSession(settings.platform_timeout_s)
        session.headers.update(client.session.headers)
        client.session.close()
        client.session = session
        # xdk answers models, not responses: a hook keeps the last answer's headers.
        self._last: requests.Response | None = None
        session.hooks["response"].append(self._remember)
        self.sleep, self.clock = sleep, clock
        self.processing_max_s = settings.x_media_processing_max_s
        self.text_limit = min(settings.reply_limit or 280, 280)
        self.media = MediaDownloader.from_settings(settings, DEFAULT_MEDIA_HOSTS)
        self._me: str | None = None
        self._spent: dict[str, float] = {}  # endpoint -> reset time, while remaining is 0

    # -- calls, errors, rate limits ---------------------------------------------------------

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    def _note_limits(self, endpoint: str, response: requests.Response | None) -> None:
        """x-rate-limit-remaining 0: the endpoint's window is used up until x-rate-limit-reset
        (docs.x.com/x-api/fundamentals/rate-limits)."""
        if response is None:
            return
        remaining = response.headers.get("x-rate-limit-remaining", "")
        reset = response.headers.get("x-rate-limit-reset", "")
        if remaining == "0" and reset.isdigit() and float(reset) > self.clock():
            self._spent[endpoint] = float(reset)
        elif remaining.isdigit() and int(remaining) > 0:
            self._spent.pop(endpoint, None)

    def _call(self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        reset = self._spent.get(endpoint)
        if reset is not None:
            if reset > self.clock():
                raise base.RateLimited(reset, f"X rate limit of {endpoint} used up")
            del self._spent[endpoint]
        self._last = None
        try:
            result = fn(*args, **kwargs)
        except requests.HTTPError as exc:
            raise self._classify(endpoint, exc.response) from exc
        except requests.RequestException as exc:
            raise base.PlatformUnavailable(f"X unreachable: {exc.__class__.__name__}") from exc
        except ValidationError as exc:  # an answer that does not follow X's schema
            raise base.PlatformError(
                f"X answered {endpoint} unexpectedly: {exc.error_count()} errors"
            ) from exc
        self._note_limits(endpoint, self._last)
        return result

    def _classify(self, endpoint: str, response: requests.Response | None) -> base.PlatformError:
        if response is None:
            return base.PlatformUnavailable(f"X: {endpoint} failed without an answer")
        status, why = response.status_code, _problem(response)
        self._note_limits(endpoint, response)
        if status == 429:
            reset = response.headers.get("x-rate-limit-reset", "")
            reset_at = float(reset) if reset.isdigit() else self.clock() + 60
            return base.RateLimited(reset_at, f"X rate limit on {endpoint}")
        if status == 401:
            return CredentialsRefused(
                f"X refused the credentials (401 {why or 'Unauthorized'}) on {endpoint}: "
                "BOT_X_ACCESS_TOKEN / BOT_X_ACCESS_TOKEN_SECRET were revoked or regenerated, "
                "or BOT_X_API_KEY / BOT_X_API_SECRET are wrong; make new ones in the developer "
                "portal (docs/bot.md, X)"
            )
        if status == 403 and "duplicate content" in why.lower():
            return DuplicateContent(f"X answered 403 on {endpoint}: {why}")
        if status >= 500:
            return base.PlatformUnavailable(f"X answered {status} on {endpoint}: {why}")
        return base.PlatformError(f"X answered {status} on {endpoint}: {why}")

    def _pages(self, endpoint: str, pages: Iterator[Any], most: int) -> Iterator[dict[str, Any]]:
        """Up to `most` pages of an xdk paginator, each fetched through _call."""
        for _ in range(most):
            page = self._call(endpoint, next, pages, None)
            if page is None:
                return
            yield _dump(page)

    # -- the Platform interface -------------------------------------------------------------

    def text_length(self, text: str) -> int:
        """As X counts a post's 280 (twitter-text weights: URLs 23, CJK double); the one
        function python-twitter, already in the bot extra, is used for here."""
        return int(calc_expected_status_length(text))

    @property
    def me(self) -> str:
        if self._me is None:
            user = _dump(self._call("GET /2/users/me", self.client.users.get_me))
            self._me = str(user["data"]["id"])
        return self._me

    def fetch_mentions(self, cursor: str | None, limit: int) -> base.MentionBatch:
        """Everything newer than `cursor`, oldest first. X answers newest first, a page at a
        time, back to since_id (or its 800 most recent mentions): all pages are read before
        the cursor moves, so a burst is not cut. With no cursor (the very first start),
        only the newest page."""
        me = self.me
        pages = self.client.users.get_mentions(
            id=me,
            since_id=cursor,
            max_results=PAGE,
            expansions=["attachments.media_keys", "author_id"],
            media_fields=["url", "type"],
            user_fields=["username"],
        )
        tweets: list[dict[str, Any]] = []
        media: dict[str, dict[str, Any]] = {}
        users: dict[str, dict[str, Any]] = {}
        for page in self._pages("GET /2/users/:id/mentions", pages, 8 if cursor else 1):
            tweets += page.get("data") or []
            includes = page.get("includes") or {}
            media.update({m["media_key"]: m for m in includes.get("media") or []})
            users.update({str(u["id"]): u for u in includes.get("users") or []})
        mentions = []
        for t in sorted(tweets, key=lambda t: int(t["id"])):
            author = str(t.get("author_id") or "")
            keys = (t.get("attachments") or {}).get("media_keys") or []
            refs = tuple(
                base.MediaRef(url=media[k]["url"], kind="image")
                for k in keys
                if k in media and media[k].get("type") == "photo" and media[k].get("url")
            )
            mentions.append(
                base.Mention(
                    id=str(t["id"]),
                    author_id=author,
                    author_handle=str(users.get(author, {}).get("username") or author),
                    text=str(t.get("text") or ""),
                    media=refs,
                    own=author == me,
                )
            )
        newest = max((int(t["id"]) for t in tweets), default=None)
        return base.MentionBatch(mentions, str(newest) if newest is not None else None)

    def download(self, media: base.MediaRef) -> tuple[bytes, str]:
        return self.media.fetch(media.url)

    def find_reply(self, mention: base.Mention) -> str | None:
        pages = self.client.users.get_posts(
            id=self.me,
            since_id=mention.id,
            max_results=PAGE,
            expansions=["referenced_tweets.id"],
        )
        for page in self._pages("GET /2/users/:id/tweets", pages, 4):
            for tweet in page.get("data") or []:
                for ref in tweet.get("referenced_tweets") or []:
                    if ref.get("type") == "replied_to" and str(ref.get("id")) == mention.id:
                        return str(tweet["id"])
        return None

    def post_reply(self, mention: base.Mention, reply: base.Reply) -> str:
        body: dict[str, Any] = {"text": reply.text, "reply": {"in_reply_to_tweet_id": mention.id}}
        if reply.image is not None:
            media_id = self._upload(reply.image, reply.image_type)
            if reply.alt_text:
                self._call(
                    "POST /2/media/metadata",
                    self.client.media.create_metadata,
                    {"id": media_id, "metadata": {"alt_text": {"text": reply.alt_text}}},
                )
            body["media"] = {"media_ids": [media_id]}
        reply.check()
        try:
            created = _dump(self._call("POST /2/tweets", self.client.posts.create, body))
        except DuplicateContent as exc:
            # X keeps one copy of a text per account: our earlier try went through (its
            # answer was lost). Find it rather than post a variant.
            existing = self.find_reply(mention)
            if existing is not None:
                log.info("X called the reply to %s a duplicate: it is %s", mention.id, existing)
                return existing
            raise DuplicateContent(
                f"{exc}; no reply of ours to {mention.id} is visible yet, not posting again"
            ) from exc
        return str(created["data"]["id"])

    # -- media upload v2 --------------------------------------------------------------------

    def _upload(self, data: bytes, content_type: str) -> str:
        """INIT, APPEND in segments, FINALIZE, then STATUS while X processes the media
        (docs.x.com/x-api/media/quickstart/media-upload-chunked)."""
        init = _dump(
            self._call(
                "POST /2/media/upload/initialize",
                self.client.media.initialize_upload,
                {
                    "media_type": content_type,
                    "total_bytes": len(data),
                    "media_category": "tweet_image",
                },
            )
        )
        media_id = str(init["data"]["id"])
        for index, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            self._call(
                "POST /2/media/upload/:id/append",
                self._append,
                media_id,
                index,
                data[start : start + CHUNK_BYTES],
            )
        final = _dump(
            self._call(
                "POST /2/media/upload/:id/finalize", self.client.media.finalize_upload, media_id
            )
        )
        info = final.get("data", {}).get("processing_info")
        deadline = self.clock() + self.processing_max_s
        while info and info.get("state") in PROCESSING_STATES:
            wait = max(0.0, float(info.get("check_after_secs") or 1))
            if self.clock() + wait > deadline:
                raise base.PlatformError(
                    f"X was still processing the card (media {media_id}) after "
                    f"{self.processing_max_s:g}s"
                )
            self.sleep(wait)
            status = _dump(
                self._call(
                    "GET /2/media/upload?command=STATUS",
                    self.client.media.get_upload_status,
                    media_id,
                    "STATUS",
                )
            )
            info = status.get("data", {}).get("processing_info")
        if info and info.get("state") != "succeeded":
            error = info.get("error") or {}
            raise base.PlatformError(
                f"X could not process the card (media {media_id}): "
                f"{error.get('message') or error.get('name') or info.get('state')}"
            )
        return media_id

    def _append(self, media_id: str, index: int, chunk: bytes) -> None:
        """APPEND as multipart/form-data, as X's documentation and samples send it. xdk
        0.10.6 sends this one as JSON with `media` a string, which the docs do not define
        for binary data. A multipart body is not part of the OAuth 1.0a signature."""
        url = f"{self.client.base_url}/2/media/upload/{media_id}/append"
        header = self.client.auth.build_request_header(method="post", url=url, body="")
        response = self.client.session.post(
            url,
            headers={"Authorization": header},
            data={"segment_index": str(index)},
            files={"media": ("blob", chunk, "application/octet-stream")},
        )
        response.raise_for_status()

    def close(self) -> None:
        self.media.close()
        self.client.session.close()
