"""Mastodon through Mastodon.py: mention notifications in, media + status replies out.

Calls: /api/v1/instance (version), /api/v1/accounts/verify_credentials (who am I),
/api/v1/notifications?types[]=mention (since_id cursor), /api/v2/media (card + alt text),
/api/v1/statuses (the reply, with an Idempotency-Key), /api/v1/statuses/:id/context (own
replies under the mention: the after-crash check).
"""

from __future__ import annotations

import re
import time
from html import unescape
from typing import Any
from urllib.parse import urlsplit

from mastodon import (
    Mastodon,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
)

from bot_service.media import MediaDownloader
from bot_service.platforms import base
from bot_service.settings import BotSettings

_TAG = re.compile(r"<[^>]+>")


def _plain(html: str) -> str:
    return unescape(_TAG.sub(" ", html.replace("<br>", "\n"))).strip()


class MastodonPlatform(base.Platform):
    name = "mastodon"
    alt_text_limit = 1500

    def __init__(self, settings: BotSettings, api: Mastodon | None = None) -> None:
        if api is None:
            base.require_settings(settings, "mastodon", "mastodon_access_token")
        token = settings.mastodon_access_token
        self.api = api or Mastodon(
            access_token=token.get_secret_value() if token else None,
            api_base_url=settings.mastodon_base_url,
            ratelimit_method="throw",  # never sleep inside the library: we schedule around it
            request_timeout=settings.platform_timeout_s,
            version_check_mode="none",
        )
        self.text_limit = settings.reply_limit or 500
        self.visibility = settings.mastodon_visibility
        instance_host = urlsplit(settings.mastodon_base_url).hostname or ""
        self.media = MediaDownloader.from_settings(settings, [instance_host])
        self._me: str | None = None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MastodonRatelimitError as exc:
            reset = self.api.ratelimit_reset
            reset_at = float(reset) if reset and reset > time.time() else time.time() + 60
            raise base.RateLimited(reset_at, "Mastodon rate limit") from exc
        except (MastodonNetworkError, MastodonServerError) as exc:
            raise base.PlatformUnavailable(f"Mastodon unavailable: {exc}") from exc
        except MastodonError as exc:
            raise base.PlatformError(f"Mastodon refused: {exc}") from exc

    @property
    def me(self) -> str:
        if self._me is None:
            self._me = str(self._call(self.api.account_verify_credentials)["id"])
        return self._me

    def fetch_mentions(self, cursor: str | None, limit: int) -> base.MentionBatch:
        me = self.me
        # min_id, not since_id: the page right after the cursor (oldest first), so a burst
        # larger than one page is read over several polls instead of skipped.
        notes = self._call(
            self.api.notifications, types=["mention"], min_id=cursor, limit=min(limit, 80)
        )
        mentions = []
        for note in sorted(notes, key=lambda n: int(n["id"])):
            status = note.get("status")
            if note.get("type") != "mention" or not status:
                continue
            account = status["account"]
            media = tuple(
                base.MediaRef(url=a["url"], kind="image", description=a.get("description"))
                for a in status.get("media_attachments") or []
                if a.get("type") == "image" and a.get("url")
            )
            mentions.append(
                base.Mention(
                    id=str(status["id"]),
                    author_id=str(account["id"]),
                    author_handle=account["acct"],
                    text=_plain(status.get("content") or ""),
                    media=media,
                    own=str(account["id"]) == me,
                )
            )
        newest = max((int(n["id"]) for n in notes), default=None)
        return base.MentionBatch(mentions, str(newest) if newest is not None else None)

    def download(self, media: base.MediaRef) -> tuple[bytes, str]:
        return self.media.fetch(media.url)

    def find_reply(self, mention: base.Mention) -> str | None:
        context = self._call(self.api.status_context, mention.id)
        for status in context["descendants"]:
            if (
                str(status["account"]["id"]) == self.me
                and str(status.get("in_reply_to_id")) == mention.id
            ):
                return str(status["id"])
        return None

    def post_reply(self, mention: base.Mention, reply: base.Reply) -> str:
        media_ids = None
        if reply.image is not None:
            attachment = self._call(
                self.api.media_post,
                reply.image,
                mime_type=reply.image_type,
                description=reply.alt_text or None,
                file_name="story-card.png",
            )
            media_ids = [attachment["id"]]
        reply.check()
        status = self._call(
            self.api.status_post,
            reply.text,
            in_reply_to_id=mention.id,
            media_ids=media_ids,
            visibility=self.visibility,
            idempotency_key=reply.key or None,
        )
        return str(status["id"])

    def close(self) -> None:
        self.media.close()
        self.api.session.close()
