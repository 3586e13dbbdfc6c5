"""The folder platform: images dropped in an inbox directory, replies written to an outbox.

Needs no account; `make run` uses it. Every file in the inbox is one mention (its name is
its id and its author); image files carry media, other files are mentions without an image.
A reply is `<name>.reply.txt` (text), `<name>.card.png` (the story card) and
`<name>.reply.json` (everything, written last: its presence means "replied"). Each reply
posted is also one line appended to `posted.jsonl` (which mention, which process, when):
the folder's timeline, where a mention answered twice would show twice.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot_service.media import check_image
from bot_service.platforms import base
from bot_service.settings import BotSettings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
POSTED_LOG = "posted.jsonl"
_CARD_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FolderPlatform(base.Platform):
    name = "folder"
    alt_text_limit = 1500

    def __init__(self, settings: BotSettings) -> None:
        self.inbox, self.outbox = settings.inbox, settings.outbox
        self.text_limit = settings.reply_limit or 500
        self.max_bytes, self.allowed_types = settings.max_media_bytes, settings.media_types
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)

    def fetch_mentions(self, cursor: str | None, limit: int) -> base.MentionBatch:
        # No cursor: the state store remembers which files were seen. Oldest first.
        files = [p for p in self.inbox.iterdir() if p.is_file() and not p.name.startswith(".")]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        mentions = []
        for path in files:
            media: tuple[base.MediaRef, ...] = ()
            if path.suffix.lower() in IMAGE_SUFFIXES:
                media = (base.MediaRef(url=path.name),)
            mentions.append(
                base.Mention(
                    id=path.name, author_id=path.name, author_handle="you", text="", media=media
                )
            )
        return base.MentionBatch(mentions=mentions, cursor=None)

    def download(self, media: base.MediaRef) -> tuple[bytes, str]:
        path = self.inbox / Path(media.url).name  # never outside the inbox
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise base.MediaRejected("the image is larger than I accept")
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise base.MediaRejected("the image was removed before I could read it") from exc
        return data, check_image(data, self.allowed_types)

    def _reply_path(self, mention: base.Mention) -> Path:
        return self.outbox / f"{mention.id}.reply.json"

    def find_reply(self, mention: base.Mention) -> str | None:
        path = self._reply_path(mention)
        return path.name if path.exists() else None

    def post_reply(self, mention: base.Mention, reply: base.Reply) -> str:
        reply.check()
        card_name = None
        if reply.image is not None:
            card_name = f"{mention.id}.card{_CARD_SUFFIX.get(reply.image_type, '.png')}"
            _write_atomic(self.outbox / card_name, reply.image)
        _write_atomic(self.outbox / f"{mention.id}.reply.txt", (reply.text + "\n").encode())
        record = {
            "in_reply_to": mention.id,
            "text": reply.text,
            "card": card_name,
            "alt_text": reply.alt_text,
            "posted_at": time.time(),
        }
        path = self._reply_path(mention)
        _write_atomic(path, json.dumps(record, ensure_ascii=False, indent=2).encode())
        line = {"in_reply_to": mention.id, "pid": os.getpid(), "posted_at": record["posted_at"]}
        # One short write in append mode: lines from several processes never interleave.
        with open(self.outbox / POSTED_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
            log.flush()
            os.fsync(log.fileno())
        return path.name
