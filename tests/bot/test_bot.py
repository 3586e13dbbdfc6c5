"""The bot's policies in-process (real Mastodon.py, real servers, a controllable clock)."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from bot_service.bot import Bot
from bot_service.gateway_client import GatewayClient
from bot_service.platforms.mastodon import MastodonPlatform
from bot_service.store import StateStore
from tests.bot.conftest import mastodon_env, settings_from
from tests.bot.fakes.mastodon import FakeMastodon
from tests.bot.gateway import CountingGateway


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def make_bot(tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon):
    made: list[Bot] = []

    def make(clock: Clock | None = None, **overrides) -> Bot:
        settings = settings_from(mastodon_env(tmp_path, gateway, mastodon, **overrides))
        bot = Bot(
            settings,
            MastodonPlatform(settings),
            GatewayClient(settings.gateway_url),
            StateStore(settings.state_path),
            clock=clock or Clock(),
            rng=random.Random(0),
        )
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.platform.close()
        bot.gateway.close()
        bot.store.close()


def test_store_is_wal(make_bot) -> None:
    assert make_bot().store.journal_mode() == "wal"


def test_dead_letter_after_max_attempts_with_backoff(
    make_bot, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("p.jpg", photo)
    bad = mastodon.mention("alice", "", (url,))
    good = mastodon.mention("bob", "", (url,))
    mastodon.fail_reply_to.add(bad)  # the platform refuses this reply (422) every time
    clock = Clock()
    bot = make_bot(clock, max_attempts=3, backoff_base_s=10)

    bot.run_once()
    assert len(mastodon.replies_to(good)) == 1
    item = bot.store.get("mastodon", bad)
    assert item is not None and (item.state, item.attempts) == ("replying", 1)
    delay = item.next_attempt_at - clock.now
    assert 5 <= delay <= 10  # base 10 s, equal jitter: between half and all of it

    clock.now = item.next_attempt_at
    bot.run_once()
    item = bot.store.get("mastodon", bad)
    assert item is not None and item.attempts == 2
    assert 10 <= item.next_attempt_at - clock.now <= 20  # doubled

    clock.now = item.next_attempt_at
    bot.run_once()
    item = bot.store.get("mastodon", bad)
    assert item is not None and item.state == "failed" and "422" in (item.last_error or "")
    assert bot.metrics.dead_letters.labels("mastodon")._value.get() == 1
    clock.now += 10_000
    assert bot.run_once().replied == 0  # a dead letter stays dead
    assert mastodon.replies_to(bad) == []


def test_pages_are_read_oldest_first_without_gaps(
    make_bot, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("p.jpg", photo)
    sids = [mastodon.mention(f"u{i}", "", (url,)) for i in range(5)]
    bot = make_bot()
    newest = bot.platform.fetch_mentions(None, 2)  # first start: the newest page only
    assert [m.id for m in newest.mentions] == sids[3:]
    batch = bot.platform.fetch_mentions("0", 2)  # with a cursor: the page right after it
    assert [m.id for m in batch.mentions] == sids[:2]
    batch = bot.platform.fetch_mentions(batch.cursor, 2)
    assert [m.id for m in batch.mentions] == sids[2:4]


def test_per_user_cooldown_and_cap_per_poll(make_bot, mastodon: FakeMastodon, photo: bytes):
    url = mastodon.add_file("p.jpg", photo)
    first = mastodon.mention("alice", "", (url,))
    second = mastodon.mention("alice", "again", (url,))
    others = [mastodon.mention(f"u{i}", "", (url,)) for i in range(3)]
    clock = Clock()
    bot = make_bot(clock, user_cooldown_s=600, max_per_poll=2)

    bot.poll()
    assert bot.work() == 2  # the cap: two mentions handled in this poll
    summary = bot.run_once()
    assert len(mastodon.replies_to(first)) == 1
    assert mastodon.replies_to(second) == []  # alice waits for her cooldown
    assert all(len(mastodon.replies_to(s)) == 1 for s in others)
    assert summary.pending == 1
    clock.now += 601
    bot.run_once()
    assert len(mastodon.replies_to(second)) == 1


def _caption_of(gateway: CountingGateway, photo: bytes) -> str:
    answer = httpx.post(
        f"{gateway.url}/v1/captions", files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["captions"][0]["text"])


def test_word_filter_retries_with_new_seeds_then_withholds(
    make_bot, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    # Every story starts from the photo's caption, so a caption word trips the filter each time.
    word = _caption_of(gateway, photo).rstrip(".").split()[-1]
    sid = mastodon.mention("bob", "", (mastodon.add_file("p.jpg", photo),))
    bot = make_bot(word_filter=f'["{word.upper()}"]', story_retries_on_filter=2)
    bot.run_once()
    (no,) = mastodon.replies_to(sid)
    assert "not fit to share" in no["content"] and not no["_media"]
    assert word not in no["content"].lower()
    assert gateway.story_calls == 3  # the first story and two new seeds


def test_word_filter_lets_clean_stories_through(
    make_bot, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    sid = mastodon.mention("alice", "", (mastodon.add_file("p.jpg", photo),))
    bot = make_bot(word_filter='["dragon"]', story_retries_on_filter=2)
    bot.run_once()
    (ok,) = mastodon.replies_to(sid)
    assert ok["_media"] and "not fit to share" not in ok["content"]
    assert gateway.story_calls == 1


def test_gateway_outage_backs_off_without_spending_attempts(
    make_bot, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("p.jpg", photo)
    sid = mastodon.mention("alice", "", (url,))
    clock = Clock()
    bot = make_bot(clock, max_attempts=1)
    gateway.down = True
    summary = bot.run_once()
    assert summary.waiting_for and "gateway" in summary.waiting_for
    assert bot.outage_until == clock.now + 1  # the gateway's Retry-After: 1
    item = bot.store.get("mastodon", sid)
    assert item is not None and (item.state, item.attempts) == ("new", 0)
    gateway.down = False
    clock.now += 1
    assert bot.run_once().replied == 1
