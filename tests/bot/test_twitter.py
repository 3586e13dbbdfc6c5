"""Platform twitter-legacy: python-twitter talking to a local server that follows the X API
v1.1 endpoints it calls."""

from __future__ import annotations

from pathlib import Path

from twitter.twitter_utils import calc_expected_status_length

from tests.bot.conftest import run_bot, twitter_env
from tests.bot.fakes.twitter import FakeTwitter
from tests.bot.gateway import CountingGateway


def test_mentions_answered_within_280_with_alt_text(
    tmp_path: Path, gateway: CountingGateway, twitter: FakeTwitter, photo: bytes
) -> None:
    url = twitter.add_file("photo.jpg", photo)
    a = twitter.mention("alice", "tell me a story", (url,))
    b = twitter.mention("bob", "and me", (url,))
    env = twitter_env(tmp_path, gateway, twitter, story_max_new_tokens=480)

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    for sid, who in ((a, "alice"), (b, "bob")):
        (reply,) = twitter.replies_to(sid)
        assert reply["full_text"].startswith(f"@{who} ")
        assert calc_expected_status_length(reply["full_text"]) <= 280
        (media,) = reply["_media"]
        assert media["data"].startswith(b"\x89PNG")
        assert media["alt_text"].startswith("Story card.") and len(media["alt_text"]) <= 1000
    assert twitter.count("POST", "/1.1/media/metadata/create.json") == 2

    again = run_bot(env, tmp_path)
    assert "recorded 0, replied 0" in again.stdout
    # The cursor (since_id) went with the second poll.
    polls = [p for _, m, p, _ in twitter.requests if p.endswith("mentions_timeline.json")]
    assert len(polls) >= 2


def test_429_on_mentions_waits_for_reset(
    tmp_path: Path, gateway: CountingGateway, twitter: FakeTwitter, photo: bytes
) -> None:
    url = twitter.add_file("photo.jpg", photo)
    sid = twitter.mention("carol", "", (url,))
    twitter.rate_limit("/1.1/statuses/mentions_timeline.json", 1.0)

    result = run_bot(twitter_env(tmp_path, gateway, twitter), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(twitter.replies_to(sid)) == 1
    polls = [
        (t, st) for t, _, p, st in twitter.requests if p == "/1.1/statuses/mentions_timeline.json"
    ]
    assert [st for _, st in polls][:2] == [429, 200]
    assert polls[1][0] >= twitter.resets["/1.1/statuses/mentions_timeline.json"]


def test_missing_credentials_is_a_clear_error(tmp_path: Path, gateway: CountingGateway) -> None:
    from tests.bot.conftest import bot_env

    result = run_bot(bot_env(tmp_path, gateway, platform="twitter-legacy"), tmp_path)
    assert result.returncode == 2
    assert "BOT_TWITTER_CONSUMER_KEY" in result.stderr and "Traceback" not in result.stderr
