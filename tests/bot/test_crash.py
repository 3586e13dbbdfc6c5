"""Kill the bot (SIGKILL) at each step, restart it: every mention answered exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.bot.conftest import bluesky_env, bot_env, mastodon_env, run_bot, twitter_env, x_env
from tests.bot.fakes.bluesky import FakeBluesky
from tests.bot.fakes.mastodon import FakeMastodon
from tests.bot.fakes.twitter import FakeTwitter
from tests.bot.fakes.x import BOT_ID, FakeX
from tests.bot.gateway import CountingGateway
from tests.support.crashpoints import POINTS


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


@pytest.mark.parametrize("point", POINTS)
def test_twitter_legacy_killed_and_restarted(
    point: str, tmp_path: Path, gateway: CountingGateway, twitter: FakeTwitter, photo: bytes
) -> None:
    url = twitter.add_file("photo.jpg", photo)
    sids = [twitter.mention(f"user{i}", "", (url,)) for i in range(2)]
    env = twitter_env(tmp_path, gateway, twitter)

    crashed = run_bot(env, tmp_path, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert [len(twitter.replies_to(s)) for s in sids] == [1, 1]
    assert twitter.count("POST", "/1.1/statuses/update.json") == 2
    # a mention killed in `replying` is looked for on the timeline before it is posted
    looked = 1 if point in ("after_intent", "after_post") else 0
    assert twitter.count("GET", "/1.1/statuses/user_timeline.json") == looked


@pytest.mark.parametrize("point", POINTS)
def test_x_killed_and_restarted(
    point: str, tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    url = x.add_file("photo.jpg", photo)
    ids = [x.mention(f"user{i}", "", (url,)) for i in range(2)]
    env = x_env(tmp_path, gateway, x)

    crashed = run_bot(env, tmp_path, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert [len(x.replies_to(t)) for t in ids] == [1, 1]
    assert gateway.story_calls == 2  # a story composed before the kill is kept
    # One POST /2/tweets per mention, each accepted: the bot's own look at its timeline
    # found the reply made before the kill, X's duplicate check never had to step in.
    assert [st for _, st in x.calls("POST", "/2/tweets")] == [201, 201]
    looked = 1 if point in ("after_intent", "after_post") else 0
    assert x.count("GET", f"/2/users/{BOT_ID}/tweets") == looked


@pytest.mark.parametrize("point", POINTS)
def test_bluesky_killed_and_restarted(
    point: str, tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    top = bluesky.post_as("talkative.test", "Send me photos!")
    uris = [bluesky.mention("user0.test", "", (photo,))]
    uris.append(bluesky.mention("user1.test", "", (photo,), reply_to=top, reason="reply"))
    env = bluesky_env(tmp_path, gateway, bluesky)

    crashed = run_bot(env, tmp_path, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert [len(bluesky.replies_to(u)) for u in uris] == [1, 1]
    assert gateway.story_calls == 2  # a story composed before the kill is kept
    # Bluesky has no idempotency key: only the bot's look at its own repo (listRecords)
    # keeps a reply made just before the kill from being posted twice.
    assert bluesky.statuses("com.atproto.repo.createRecord") == [200, 200]
    if point == "after_post":
        assert bluesky.count("GET", "com.atproto.repo.listRecords") == 1
    # The session of the killed run was saved and reused: one login in all.
    assert bluesky.count("POST", "com.atproto.server.createSession") == 1
    (answer,) = bluesky.replies_to(uris[1])
    assert answer["record"]["reply"]["root"]["uri"] == top  # refs right after a restart too


@pytest.mark.parametrize("point", POINTS)
def test_folder_killed_and_restarted(
    point: str, tmp_path: Path, gateway: CountingGateway, photo: bytes
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (inbox / name).write_bytes(photo)
    env = bot_env(tmp_path, gateway)

    crashed = run_bot(env, tmp_path, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    restarted = run_bot(env, tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    outbox = tmp_path / "outbox"
    assert sorted(p.name for p in outbox.glob("*.reply.json")) == [
        "a.jpg.reply.json",
        "b.jpg.reply.json",
    ]
    assert gateway.story_calls == 2  # a story composed before the kill is kept
