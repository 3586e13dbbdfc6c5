"""Kill the bot (SIGKILL) at each step, restart it: every mention answered exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.bot.conftest import mastodon_env, run_bot, twitter_env
from tests.bot.fakes.mastodon import FakeMastodon
from tests.bot.fakes.twitter import FakeTwitter
from tests.bot.gateway import CountingGateway


@pytest.mark.parametrize(
    ("point", "stories", "posts"),
    [
        # (crash point, gateway stories asked for in all, POST /api/v1/statuses in all)
        ("after_record", 3, 3),
        ("after_gateway", 3, 3),  # the story computed before the crash is kept, not re-asked
        ("after_intent", 3, 3),  # intent recorded, nothing posted: the check finds none, posts
        ("after_post", 3, 3),  # posted, then killed: the check finds the reply, posts nothing
    ],
)
def test_mastodon_killed_and_restarted(
    point: str,
    stories: int,
    posts: int,
    tmp_path: Path,
    gateway: CountingGateway,
    mastodon: FakeMastodon,
    photo: bytes,
) -> None:
    url = mastodon.add_file("photo.jpg", photo)
    sids = [mastodon.mention(f"user{i}", "", (url,)) for i in range(3)]
    # Without the platform's idempotency key, only the bot's own check prevents a double post.
    mastodon.idempotency_enabled = False
    env = mastodon_env(tmp_path, gateway, mastodon)

    crashed = run_bot(env, tmp_path, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert [len(mastodon.replies_to(s)) for s in sids] == [1, 1, 1]
    assert gateway.story_calls == stories
    assert mastodon.count("POST", "/api/v1/statuses") == posts
    if point == "after_post":
        assert mastodon.count("GET", "/api/v1/statuses/") >= 1  # it looked before posting


def test_twitter_killed_after_post_finds_its_reply(
    tmp_path: Path, gateway: CountingGateway, twitter: FakeTwitter, photo: bytes
) -> None:
    url = twitter.add_file("photo.jpg", photo)
    sids = [twitter.mention(f"user{i}", "", (url,)) for i in range(2)]
    env = twitter_env(tmp_path, gateway, twitter)

    crashed = run_bot(env, tmp_path, crash_at="after_post")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert [len(twitter.replies_to(s)) for s in sids] == [1, 1]
    assert twitter.count("POST", "/1.1/statuses/update.json") == 2
    assert twitter.count("GET", "/1.1/statuses/user_timeline.json") == 1
