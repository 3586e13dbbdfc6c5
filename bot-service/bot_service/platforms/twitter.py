"""Platform `twitter-legacy`: X (Twitter) through python-twitter and the v1.1 endpoints it
speaks, for accounts that still have v1.1 access and for v1.1-compatible servers
(BOT_TWITTER_BASE_URL). `twitter` is its deprecated name. Its state (cursor, mentions,
lease) stays under the name `twitter`, so a deployment that renames the setting keeps it.
The X API v2 adapter is platforms/x.py.

Calls: account/verify_credentials (who am I), statuses/mentions_timeline (since_id cursor),
media/upload + media/metadata/create (card + alt text), statuses/update (the reply),
statuses/user_timeline (own replies since the mention: the after-crash check).
See docs/bot.md for the access level this needs.
"""

from __future__ import annotations

import io
import time
from typing import Any

import requests
import twitter
from twitter.twitter_utils import calc_expected_status_length

from bot_service.media import MediaDownloader
from bot_service.platforms import base
from bot_service.settings import BotSettings


class _NamedBytes(io.BytesIO):
    """python-twitter wants a file object with a name (for the type) opened 'rb'."""

    mode = "rb"

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


DEFAULT_MEDIA_HOSTS = ["pbs.twimg.com", "ton.twimg.com"]  # X's CDN, for v1.1 as for v2


class TwitterPlatform(base.Platform):
    name = "twitter"  # the state's key since before the rename: kept
    alt_text_limit = 1000

    def __init__(self, settings: BotSettings, api: twitter.Api | None = None) -> None:
        if api is None:
            base.require_settings(
                settings,
                "twitter-legacy",
                "twitter_consumer_key",
                "twitter_consumer_secret",
                "twitter_access_token",
                "twitter_access_token_secret",
            )
        self.api = api or twitter.Api(
            consumer_key=_secret(settings.twitter_consumer_key),
            consumer_secret=_secret(settings.twitter_consumer_secret),
            access_token_key=_secret(settings.twitter_access_token),
            access_token_secret=_secret(settings.twitter_access_token_secret),
            base_url=settings.twitter_base_url.rstrip("/"),
            upload_url=settings.twitter_upload_url.rstrip("/"),
            cache=None,
            timeout=max(settings.platform_timeout_s, 30),
            tweet_mode="extended",
            sleep_on_rate_limit=False,  # we schedule around limits ourselves, never block here
        )
        # python-twitter hides status codes and headers; a response hook keeps the last ones.
        self._last: requests.Response | None = None
        self.api._session.hooks["response"].append(self._remember)
        self.text_limit = min(settings.reply_limit or 280, 280)
        self.media = MediaDownloader.from_settings(settings, DEFAULT_MEDIA_HOSTS)
        self._me: str | None = None

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._last = None
        try:
            return fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise base.PlatformUnavailable(f"X unreachable: {exc.__class__.__name__}") from exc
        except twitter.TwitterError as exc:
            raise self._classify(exc) from exc

    def _classify(self, exc: Exception) -> base.PlatformError:
        status = self._last.status_code if self._last is not None else 0
        headers = self._last.headers if self._last is not None else {}
        if status == 429:
            reset = headers.get("x-rate-limit-reset", "")
            reset_at = float(reset) if reset.isdigit() else time.time() + 60
            return base.RateLimited(reset_at, "X rate limit")
        if status >= 500 or status == 0:
            return base.PlatformUnavailable(f"X answered {status}: {exc}")
        return base.PlatformError(f"X answered {status}: {exc}")

    @property
    def me(self) -> str:
        if self._me is None:
            user = self._call(self.api.VerifyCredentials)
            self._me = str(user.id)
        return self._me

    def text_length(self, text: str) -> int:
        return int(calc_expected_status_length(text))

    def fetch_mentions(self, cursor: str | None, limit: int) -> base.MentionBatch:
        me = self.me
        statuses = self._call(
            self.api.GetMentions, count=min(max(limit, 1), 200), since_id=cursor, trim_user=False
        )
        mentions = []
        for s in sorted(statuses, key=lambda s: int(s.id)):
            media = tuple(
                base.MediaRef(url=m.media_url_https or m.media_url, kind="image")
                for m in (s.media or [])
                if m.type == "photo"
            )
            mentions.append(
                base.Mention(
                    id=str(s.id),
                    author_id=str(s.user.id),
                    author_handle=s.user.screen_name,
                    text=s.full_text or s.text or "",
                    media=media,
                    own=str(s.user.id) == me,
                )
            )
        newest = max((int(s.id) for s in statuses), default=None)
        return base.MentionBatch(mentions, str(newest) if newest is not None else None)

    def download(self, media: base.MediaRef) -> tuple[bytes, str]:
        return self.media.fetch(media.url)

    def find_reply(self, mention: base.Mention) -> str | None:
        own = self._call(
            self.api.GetUserTimeline,
            user_id=int(self.me),
            since_id=int(mention.id),
            count=200,
            include_rts=False,
            trim_user=True,
        )
        for status in own:
            if str(status.in_reply_to_status_id) == mention.id:
                return str(status.id)
        return None

    def post_reply(self, mention: base.Mention, reply: base.Reply) -> str:
        media_ids = None
        if reply.image is not None:
            suffix = {"image/jpeg": "jpg", "image/webp": "webp"}.get(reply.image_type, "png")
            media_id = self._call(
                self.api.UploadMediaSimple, _NamedBytes(reply.image, f"card.{suffix}")
            )
            if reply.alt_text:
                response = self._call(self.api.PostMediaMetadata, media_id, reply.alt_text)
                if response.status_code >= 400:
                    self._last = response
                    raise self._classify(twitter.TwitterError("alt text refused"))
            media_ids = [int(media_id)]
        reply.check()
        status = self._call(
            self.api.PostUpdate,
            reply.text,
            media=media_ids,
            in_reply_to_status_id=int(mention.id),
        )
        return str(status.id)

    def close(self) -> None:
        self.media.close()
        self.api._session.close()
