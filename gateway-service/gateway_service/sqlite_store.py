"""Stories in a SQLite file: survives a restart, and the gateway processes of one host
share it (WAL: readers never wait for the writer).

One row per story; the card is a column filled in when it is first rendered. Every put
deletes the expired rows and then the oldest rows over `capacity` (by insertion order,
which SQLite's write lock makes one order for every process), in the same transaction.
Times are epoch seconds from the processes' clock: one host, one clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway_service.store import StoredStory, StoryStore
from talkative_common.errors import Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stories (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order: the oldest go first
    id      TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,                      -- epoch seconds
    meta    TEXT NOT NULL,                      -- StoredStory.meta_json()
    photo   BLOB NOT NULL,
    card    BLOB
);
CREATE INDEX IF NOT EXISTS stories_created ON stories (created);
"""


def sqlite_path(url: str) -> Path:
    """`sqlite:///srv/stories.db` is /srv/stories.db; `sqlite://var/stories.db` is relative
    to the working directory."""
    path = url.removeprefix("sqlite://")
    if not path or path == "/":
        raise ValueError(f"GATEWAY_STORE_URL={url!r}: name the file, e.g. sqlite:///path/x.db")
    return Path(path)


class SqliteStore(StoryStore):
    name = "sqlite"

    def __init__(
        self,
        path: Path,
        capacity: int,
        ttl_s: float,
        *,
        timeout_s: float = 2.0,
        retry_after_s: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(capacity, ttl_s)
        self.path, self.clock, self.retry_after_s = path, clock, retry_after_s
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit; a put is one explicit BEGIN IMMEDIATE transaction. One connection,
        # used by one worker thread at a time (the lock).
        self._db = sqlite3.connect(
            path, isolation_level=None, timeout=timeout_s, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: a power cut may lose the last
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    async def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        def locked() -> Any:
            with self._lock:
                return work(self._db)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.OperationalError as exc:  # locked too long, disk full, ...
            raise Unavailable(
                f"the story store ({self.path}) is unavailable: {exc}",
                retry_after_s=self.retry_after_s,
            ) from exc

    async def put(self, story: StoredStory) -> None:
        def put(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM stories WHERE created <= ?", (self.clock() - self.ttl_s,))
                db.execute(
                    "INSERT OR REPLACE INTO stories (id, created, meta, photo, card)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (story.id, story.created, story.meta_json(), story.photo_jpeg, story.card_png),
                )
                db.execute(
                    "DELETE FROM stories WHERE seq IN"
                    " (SELECT seq FROM stories ORDER BY seq DESC LIMIT -1 OFFSET ?)",
                    (self.capacity,),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        await self._run(put)

    async def get(self, story_id: str) -> StoredStory | None:
        def get(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = db.execute(
                "SELECT meta, photo, card FROM stories WHERE id = ? AND created > ?",
                (story_id, self.clock() - self.ttl_s),
            ).fetchone()
            return row

        row = await self._run(get)
        return None if row is None else StoredStory.from_parts(story_id, *row)

    async def put_card(self, story_id: str, png: bytes) -> None:
        await self._run(
            lambda db: db.execute("UPDATE stories SET card = ? WHERE id = ?", (png, story_id))
        )

    async def count(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            cutoff = self.clock() - self.ttl_s
            row = db.execute("SELECT COUNT(*) FROM stories WHERE created > ?", (cutoff,))
            return int(row.fetchone()[0])

        return int(await self._run(count))

    async def ready(self) -> str | None:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
        except Unavailable as exc:
            return exc.detail
        return None

    async def close(self) -> None:
        with self._lock:
            self._db.close()
