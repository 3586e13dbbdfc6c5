"""The `x` platform (xdk, X API v2) against a local server that follows X's documented
request and response shapes (tests/bot/fakes/x.py), with the real gateway."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import httpx
from twitter.twitter_utils import calc_expected_status_length

from tests.bot.conftest import run_bot, x_env
from tests.bot.fakes.x import BOT_ID, SECRETS, FakeX
from tests.bot.gateway import CountingGateway

MENTIONS = f"/2/users/{BOT_ID}/mentions"
OWN_POSTS = f"/2/users/{BOT_ID}/tweets"
INIT = "/2/media/upload/initialize"
STATUS = "/2/media/upload"
TWEETS = "/2/tweets"


def _states(tmp_path: Path) -> dict[str, tuple[str, int, str | None]]:
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        rows = db.execute("SELECT mention_id, state, attempts, last_error FROM mentions")
        return {r[0]: (r[1], r[2], r[3]) for r in rows.fetchall()}


def _run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`bot-service run --once`; no credential in anything it printed or logged."""
    result = run_bot(env, tmp_path)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_mentions_answered_with_card_alt_text_and_since_id(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    url = x.add_file("photo.jpg", photo)
    ids = [x.mention(f"user{i}", "story please", (url,)) for i in range(2)]
    no_image = x.mention("curious", "what do you do?")
    # DEBUG: even the HTTP libraries' own log lines must not carry a credential
    env = x_env(tmp_path, gateway, x, story_max_new_tokens=480, log_level="DEBUG")

    result = _run(env, tmp_path)
    assert result.returncode == 0, result.stderr
    for i, tid in enumerate(ids):
        (reply,) = x.replies_to(tid)  # reply.in_reply_to_tweet_id carried the mention
        assert reply["text"].startswith(f"@user{i} ")
        assert calc_expected_status_length(reply["text"]) <= 280
        (media,) = reply["_media"]  # media.media_ids carried the card
        assert media["data"].startswith(b"\x89PNG") and media["media_type"] == "image/png"
        assert media["category"] == "tweet_image" and media["state"] == "succeeded"
        assert media["alt_text"].startswith("Story card. The photo shows ")
        assert len(media["alt_text"]) <= 1000
    (help_reply,) = x.replies_to(no_image)
    assert "Send me a photo" in help_reply["text"] and not help_reply["_media"]
    assert gateway.story_calls == 2
    first_poll = x.query("GET", MENTIONS)[0]
    assert "since_id" not in first_poll
    assert set(first_poll["expansions"].split(",")) == {"attachments.media_keys", "author_id"}
    assert {"url", "type"} <= set(first_poll["media.fields"].split(","))

    # The cursor: the next poll asks only for what is newer than the newest mention seen.
    newer = x.mention("late", "one more", (url,))
    again = _run(env, tmp_path)
    assert again.returncode == 0 and "recorded 1, replied 1" in again.stdout
    assert x.query("GET", MENTIONS)[-1]["since_id"] == no_image
    assert len(x.replies_to(newer)) == 1
    assert sum(len(x.replies_to(t)) for t in ids) == 2


def test_a_burst_is_read_page_by_page(tmp_path: Path, gateway: CountingGateway, x: FakeX) -> None:
    first = x.mention("early", "hello")
    env = x_env(tmp_path, gateway, x, help_reply="", max_per_poll=200)
    assert _run(env, tmp_path).returncode == 0
    burst = [x.mention(f"fan{i}", "hi") for i in range(130)]  # more than one page of 100

    result = _run(env, tmp_path)
    assert result.returncode == 0 and "recorded 130" in result.stdout
    polls = x.query("GET", MENTIONS)[1:]
    assert [p.get("since_id") for p in polls] == [first, first]
    assert "pagination_token" not in polls[0] and polls[1]["pagination_token"]
    assert set(_states(tmp_path)) == {first, *burst}


def test_media_processing_is_waited_for(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    tid = x.mention("patient", "", (x.add_file("photo.jpg", photo),))
    x.processing_checks = 1  # FINALIZE: pending; STATUS: in_progress, then succeeded

    result = _run(x_env(tmp_path, gateway, x), tmp_path)
    assert result.returncode == 0, result.stderr
    (reply,) = x.replies_to(tid)
    assert reply["_media"][0]["state"] == "succeeded"
    finalized = next(t for t, m, p, _ in x.requests if p.endswith("/finalize"))
    checks = [t for t, _ in x.calls("GET", STATUS)]
    assert len(checks) == 2
    # check_after_secs (1 s) honoured before each STATUS, and the post came after both
    assert checks[0] - finalized >= 1 and checks[1] - checks[0] >= 1
    assert x.calls("POST", TWEETS)[0][0] > checks[1]


def test_failed_media_processing_fails_cleanly(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    tid = x.mention("unlucky", "", (x.add_file("photo.jpg", photo),))
    x.processing_fails = True

    result = _run(x_env(tmp_path, gateway, x, max_attempts=1), tmp_path)
    assert result.returncode == 0, result.stderr
    assert x.replies_to(tid) == [] and x.count("POST", TWEETS) == 0
    state, attempts, error = _states(tmp_path)[tid]
    assert state == "failed" and attempts == 1
    assert error is not None and "could not process the card" in error
    assert "Unsupported image" in error


def test_429_honoured_until_reset(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    tid = x.mention("hasty", "", (x.add_file("photo.jpg", photo),))
    x.rate_limit(MENTIONS, 1.0)
    x.rate_limit(INIT, 1.0)

    result = _run(x_env(tmp_path, gateway, x), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(x.replies_to(tid)) == 1
    polls, uploads = x.calls("GET", MENTIONS), x.calls("POST", INIT)
    assert [st for _, st in polls][:2] == [429, 200]  # one refusal, then it waited
    assert [st for _, st in uploads] == [429, 200]
    assert polls[1][0] >= x.resets[MENTIONS] and uploads[1][0] >= x.resets[INIT]


def test_remaining_zero_waits_without_asking(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    url = x.add_file("photo.jpg", photo)
    ids = [x.mention(f"user{i}", "", (url,)) for i in range(2)]
    x.exhaust(INIT, 1.0)  # the first upload's answer says x-rate-limit-remaining: 0

    result = _run(x_env(tmp_path, gateway, x), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [len(x.replies_to(t)) for t in ids] == [1, 1]
    calls = x.calls("POST", INIT)
    assert [st for _, st in calls] == [200, 200]  # no request spent on a 429
    assert calls[1][0] >= x.resets[INIT]


def test_duplicate_content_is_not_posted_twice(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    tid = x.mention("alice", "", (x.add_file("photo.jpg", photo),))
    x.lose_post_answers = 1  # the reply is made, its answer lost (503)
    x.timeline_lag = 1  # and the next look at our timeline does not show it yet
    env = x_env(tmp_path, gateway, x)

    lost = _run(env, tmp_path)
    assert lost.returncode == 75 and "waiting: platform" in lost.stdout
    assert _states(tmp_path)[tid][:2] == ("replying", 0)

    again = _run(env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(x.replies_to(tid)) == 1
    # it looked (not there yet), posted, was told "duplicate content", looked again, found it
    assert [st for _, st in x.calls("POST", TWEETS)] == [503, 403]
    assert x.count("GET", OWN_POSTS) == 2
    state, attempts, _ = _states(tmp_path)[tid]
    assert (state, attempts) == ("replied", 0)


def test_revoked_token_is_reported_and_nothing_lost(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    tid = x.mention("alice", "", (x.add_file("photo.jpg", photo),))
    x.revoke()
    env = x_env(tmp_path, gateway, x)

    refused = _run(env, tmp_path)
    assert refused.returncode == 75
    assert "X refused the credentials (401 Unauthorized" in refused.stdout
    assert "BOT_X_ACCESS_TOKEN" in refused.stdout
    assert "X refused the credentials" in refused.stderr  # logged too
    assert x.replies_to(tid) == []

    x.revoke(False)  # new tokens in place
    fixed = _run(env, tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert len(x.replies_to(tid)) == 1
    assert _states(tmp_path)[tid][:2] == ("replied", 0)


def test_a_wrong_secret_is_refused_by_the_signature_check(
    tmp_path: Path, gateway: CountingGateway, x: FakeX
) -> None:
    env = {**x_env(tmp_path, gateway, x), "BOT_X_ACCESS_TOKEN_SECRET": "not-the-secret"}
    result = _run(env, tmp_path)
    assert result.returncode == 75 and "401" in result.stdout
    assert "not-the-secret" not in result.stdout + result.stderr


def test_media_only_from_allowed_hosts(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    foreign = x.add_file("elsewhere.jpg", photo).replace("127.0.0.1", "localhost")
    tid = x.mention("mallory", "", (foreign,))

    result = _run(x_env(tmp_path, gateway, x), tmp_path)
    assert result.returncode == 0, result.stderr
    (reply,) = x.replies_to(tid)
    assert "could not read that image" in reply["text"] and not reply["_media"]
    assert gateway.story_calls == 0
    assert x.count("GET", "/media/elsewhere.jpg") == 0  # never contacted


def test_word_filter_withholds_the_story(
    tmp_path: Path, gateway: CountingGateway, x: FakeX, photo: bytes
) -> None:
    # Every story starts from the photo's caption: a caption word trips the filter each time.
    caption = httpx.post(
        f"{gateway.url}/v1/captions", files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=60
    )
    caption.raise_for_status()
    word = str(caption.json()["captions"][0]["text"]).rstrip(".").split()[-1]
    tid = x.mention("bob", "", (x.add_file("photo.jpg", photo),))
    env = x_env(tmp_path, gateway, x, word_filter=f'["{word.upper()}"]', story_retries_on_filter=1)

    result = _run(env, tmp_path)
    assert result.returncode == 0, result.stderr
    (reply,) = x.replies_to(tid)
    assert "not fit to share" in reply["text"] and not reply["_media"]
    assert word.lower() not in reply["text"].lower()
    assert x.count("POST", INIT) == 0


def test_missing_credentials_is_a_clear_error(tmp_path: Path, gateway: CountingGateway) -> None:
    from tests.bot.conftest import bot_env

    result = run_bot(bot_env(tmp_path, gateway, platform="x"), tmp_path)
    assert result.returncode == 2
    assert "BOT_X_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_twitter_is_a_deprecated_name_of_twitter_legacy(
    tmp_path: Path, gateway: CountingGateway
) -> None:
    from tests.bot.conftest import bot_env

    result = run_bot(bot_env(tmp_path, gateway, platform="twitter"), tmp_path)
    assert result.returncode == 2  # no credentials: the legacy adapter's own message
    assert "BOT_PLATFORM=twitter is deprecated" in result.stderr
    assert "twitter-legacy platform needs BOT_TWITTER_CONSUMER_KEY" in result.stderr
    helped = run_bot({}, tmp_path, "--help")
    listed = re.search(r"--platform \{([^}]*)\}", helped.stdout)
    assert listed is not None, helped.stdout
    assert set(listed.group(1).split(",")) == {
        "x",
        "bluesky",
        "mastodon",
        "twitter-legacy",
        "folder",
    }
