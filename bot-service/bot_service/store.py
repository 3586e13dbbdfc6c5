"""Durable bot state in SQLite (WAL): every mention, its progress, and the platform cursor.

A mention is recorded before any work is done on it, and every step commits before the
next begins, so a crash at any point resumes where it stopped:

    new ──► captioned ──► replying ──► replied
     │          │            │
     └──────────┴────────────┴──► failed (dead letter after max_attempts)
    skipped: own posts, or mentions without an image when the help reply is off

`captioned` holds the finished reply (story, card, alt text, or a help/error message);
`replying` is the recorded intent to post it: after a crash in that state the bot looks
for its own reply on the platform before posting again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bot_service.platforms.base import MediaRef, Mention

PENDING = ("new", "captioned", "replying")
STATES = ("new", "captioned", "replying", "replied", "failed", "skipped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mentions (
    platform        TEXT NOT NULL,
    mention_id      TEXT NOT NULL,
    author_id       TEXT NOT NULL,
    author_handle   TEXT NOT NULL,
    text            TEXT NOT NULL,
    media           TEXT NOT NULL,            -- JSON list of {url, kind, description}
    own             INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'new',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    reply_kind      TEXT,                     -- story | help | error | blocked
    caption         TEXT,
    story           TEXT,
    story_json      TEXT,
    card            BLOB,
    card_type       TEXT,
    reply_text      TEXT,
    alt_text        TEXT,
    reply_id        TEXT,
    recorded_at     REAL NOT NULL,
    updated_at      REAL NOT NULL,
    replied_at      REAL,
    PRIMARY KEY (platform, mention_id)
);
CREATE INDEX IF NOT EXISTS mentions_due ON mentions (platform, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS mentions_author ON mentions (platform, author_id, replied_at);
CREATE TABLE IF NOT EXISTS cursors (
    platform TEXT PRIMARY KEY,
    value    TEXT NOT NULL
);
"""


@dataclass
class Item:
    platform: str
    mention: Mention
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    reply_kind: str | None
    caption: str | None
    story: str | None
    card: bytes | None
    card_type: str | None
    reply_text: str | None
    alt_text: str | None
    reply_id: str | None

    @property
    def key(self) -> str:
        return f"talkative-bot-{self.platform}-{self.mention.id}"


def _item(row: sqlite3.Row) -> Item:
    media = tuple(MediaRef(**m) for m in json.loads(row["media"]))
    mention = Mention(
        id=row["mention_id"],
        author_id=row["author_id"],
        author_handle=row["author_handle"],
        text=row["text"],
        media=media,
        own=bool(row["own"]),
    )
    # Every other field of Item is a column of the same name.
    columns = {f.name: row[f.name] for f in fields(Item) if f.name != "mention"}
    return Item(mention=mention, **columns)


class StateStore:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the bot's clock: cooldowns and retries compare against it
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit; multi-statement steps use explicit BEGIN IMMEDIATE transactions.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a commit survives a crash, then we post
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def journal_mode(self) -> str:
        return str(self.db.execute("PRAGMA journal_mode").fetchone()[0])

    # -- recording ---------------------------------------------------------------------------

    def record(self, platform: str, mentions: list[Mention], cursor: str | None) -> int:
        """Record new mentions and advance the cursor in one transaction; returns how many new."""
        now = self.clock()
        added = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for m in mentions:
                media = json.dumps(
                    [{"url": r.url, "kind": r.kind, "description": r.description} for r in m.media]
                )
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO mentions (platform, mention_id, author_id,"
                    " author_handle, text, media, own, state, recorded_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        platform,
                        m.id,
                        m.author_id,
                        m.author_handle,
                        m.text,
                        media,
                        int(m.own),
                        "skipped" if m.own else "new",
                        now,
                        now,
                    ),
                )
                added += cur.rowcount if not m.own else 0
            if cursor is not None:
                self.db.execute(
                    "INSERT INTO cursors (platform, value) VALUES (?, ?)"
                    " ON CONFLICT(platform) DO UPDATE SET value = excluded.value",
                    (platform, cursor),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return added

    def cursor(self, platform: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM cursors WHERE platform = ?", (platform,)
        ).fetchone()
        return str(row["value"]) if row else None

    # -- reading -----------------------------------------------------------------------------

    def due(self, platform: str, now: float, limit: int) -> list[Item]:
        rows = self.db.execute(
            "SELECT * FROM mentions WHERE platform = ? AND state IN ('new','captioned','replying')"
            " AND next_attempt_at <= ? ORDER BY recorded_at, rowid LIMIT ?",
            (platform, now, limit),
        ).fetchall()
        return [_item(r) for r in rows]

    def get(self, platform: str, mention_id: str) -> Item | None:
        row = self.db.execute(
            "SELECT * FROM mentions WHERE platform = ? AND mention_id = ?", (platform, mention_id)
        ).fetchone()
        return _item(row) if row else None

    def items(self, platform: str, state: str | None = None) -> list[Item]:
        sql, args = "SELECT * FROM mentions WHERE platform = ?", [platform]
        if state:
            sql, args = sql + " AND state = ?", [*args, state]
        return [_item(r) for r in self.db.execute(sql + " ORDER BY recorded_at, rowid", args)]

    def counts(self, platform: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) AS n FROM mentions WHERE platform = ? GROUP BY state",
            (platform,),
        )
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["state"]: r["n"] for r in rows})
        return counts

    def next_due_at(self, platform: str) -> float | None:
        row = self.db.execute(
            "SELECT MIN(next_attempt_at) FROM mentions WHERE platform = ?"
            " AND state IN ('new','captioned','replying')",
            (platform,),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def last_reply_at(self, platform: str, author_id: str, exclude: str) -> float | None:
        row = self.db.execute(
            "SELECT MAX(replied_at) FROM mentions WHERE platform = ? AND author_id = ?"
            " AND mention_id != ? AND replied_at IS NOT NULL",
            (platform, author_id, exclude),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # -- transitions -------------------------------------------------------------------------

    def _update(self, item: Item, expect: tuple[str, ...] = (), **fields: Any) -> bool:
        """Change a mention; with `expect`, only if it is still in one of those states (a
        compare-and-set: of two instances sharing this file, one wins). True if changed."""
        fields["updated_at"] = self.clock()
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE mentions SET {sets} WHERE platform = ? AND mention_id = ?"
        args = [*fields.values(), item.platform, item.mention.id]
        if expect:
            sql += f" AND state IN ({', '.join('?' * len(expect))})"
            args += expect
        return bool(self.db.execute(sql, args).rowcount == 1)

    def mark_composed(
        self,
        item: Item,
        *,
        kind: str,
        reply_text: str,
        alt_text: str = "",
        caption: str | None = None,
        story: str | None = None,
        story_json: str | None = None,
        card: bytes | None = None,
        card_type: str | None = None,
    ) -> bool:
        return self._update(
            item,
            ("new",),
            state="captioned",
            reply_kind=kind,
            reply_text=reply_text,
            alt_text=alt_text,
            caption=caption,
            story=story,
            story_json=story_json,
            card=card,
            card_type=card_type,
            last_error=None,
        )

    def mark_intent(self, item: Item) -> bool:
        """captioned -> replying; False if the mention is no longer `captioned`."""
        return self._update(item, ("captioned",), state="replying")

    def mark_replied(self, item: Item, reply_id: str) -> None:
        self._update(item, state="replied", reply_id=reply_id, replied_at=self.clock())

    def mark_skipped(self, item: Item, reason: str) -> None:
        self._update(item, state="skipped", last_error=reason)

    def defer(self, item: Item, until: float, reason: str | None = None) -> None:
        """Wait without spending an attempt (cooldown, outage, rate limit)."""
        self._update(item, next_attempt_at=until, last_error=reason or item.last_error)

    def mark_attempt_failed(self, item: Item, error: str, retry_at: float | None) -> None:
        """Spend an attempt; retry at `retry_at`, or dead-letter when it is None."""
        if retry_at is None:
            self._update(item, state="failed", attempts=item.attempts + 1, last_error=error)
        else:
            self._update(
                item, attempts=item.attempts + 1, next_attempt_at=retry_at, last_error=error
            )
