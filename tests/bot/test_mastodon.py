"""Mastodon.py talking to a local instance that follows the documented endpoints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.bot.conftest import mastodon_env, run_bot
from tests.bot.fakes.mastodon import FakeMastodon
from tests.bot.gateway import CountingGateway

# What the test captioner's captions name (the gateway tidies their wording).
SUBJECT_WORDS = ("cat", "coffee", "rocket")


def _states(tmp_path: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        rows = db.execute("SELECT mention_id, state, attempts FROM mentions").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_mentions_answered_with_card_alt_text_and_limit(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("photo.jpg", photo)
    sids = [mastodon.mention(f"user{i}", "story please", (url,)) for i in range(3)]
    no_image = mastodon.mention("curious", "what do you do?")
    own = mastodon.mention("talkative", "my own post", (url,))
    env = mastodon_env(tmp_path, gateway, mastodon, story_max_new_tokens=480)

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr

    for i, sid in enumerate(sids):
        (reply,) = mastodon.replies_to(sid)
        assert reply["content"].startswith(f"@user{i} ")
        assert len(reply["content"]) <= 500 and reply["content"].endswith("…")  # long story cut
        assert reply["visibility"] == "unlisted"
        (media,) = reply["_media"]
        assert media["data"].startswith(b"\x89PNG") and media["content_type"] == "image/png"
        assert media["description"].startswith("Story card. The photo shows ")
        assert any(w in media["description"].lower() for w in SUBJECT_WORDS)
    (help_reply,) = mastodon.replies_to(no_image)
    assert "Send me a photo" in help_reply["content"] and not help_reply["_media"]
    assert mastodon.replies_to(own) == []
    assert gateway.story_calls == 3
    assert _states(tmp_path)[own][0] == "skipped"

    # The cursor moved past everything: a second run asks only for newer notifications.
    again = run_bot(env, tmp_path)
    assert again.returncode == 0 and "recorded 0, replied 0" in again.stdout
    assert sum(len(mastodon.replies_to(s)) for s in sids) == 3


def test_gateway_down_then_back_nothing_dropped(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("photo.jpg", photo)
    sids = [mastodon.mention(f"user{i}", "", (url,)) for i in range(3)]
    env = mastodon_env(tmp_path, gateway, mastodon, max_attempts=1)
    gateway.down = True

    for _ in range(3):  # down for a while: several runs, each stops at the first 503
        down = run_bot(env, tmp_path)
        assert down.returncode == 75, down.stderr
        assert "waiting: gateway" in down.stdout
    assert all(mastodon.replies_to(s) == [] for s in sids)
    # Not a single attempt spent, even with max_attempts=1: an outage is not the mention's fault.
    assert _states(tmp_path) == {s: ("new", 0) for s in sids}

    gateway.down = False
    up = run_bot(env, tmp_path)
    assert up.returncode == 0, up.stderr
    assert [len(mastodon.replies_to(s)) for s in sids] == [1, 1, 1]


def test_429_honoured_until_reset(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, photo: bytes
) -> None:
    url = mastodon.add_file("photo.jpg", photo)
    sid = mastodon.mention("user", "", (url,))
    mastodon.rate_limit("/api/v1/notifications", 1.0)
    mastodon.rate_limit("/api/v2/media", 1.0)

    result = run_bot(mastodon_env(tmp_path, gateway, mastodon), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(mastodon.replies_to(sid)) == 1

    def calls(prefix: str) -> list[tuple[float, int]]:
        return [(t, st) for t, _, p, st in mastodon.requests if p.startswith(prefix)]

    polls, uploads = calls("/api/v1/notifications"), calls("/api/v2/media")
    assert [st for _, st in polls][:2] == [429, 200]  # one refusal, then it waited
    assert polls[1][0] >= mastodon.resets["/api/v1/notifications"]
    assert [st for _, st in uploads] == [429, 202]
    assert uploads[1][0] >= mastodon.resets["/api/v2/media"]


def test_media_only_from_allowed_hosts_and_corrupt_images(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, corrupt_photo: bytes
) -> None:
    foreign = mastodon.add_file("x.jpg", corrupt_photo).replace("127.0.0.1", "localhost")
    broken = mastodon.add_file("broken.jpg", corrupt_photo)
    huge = mastodon.add_file("huge.jpg", b"\xff\xd8" + b"\0" * 3_000_000)
    s_foreign = mastodon.mention("a", "", (foreign,))
    s_broken = mastodon.mention("b", "", (broken,))
    s_huge = mastodon.mention("c", "", (huge,))
    env = mastodon_env(tmp_path, gateway, mastodon, max_media_bytes=2_000_000)

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    for sid in (s_foreign, s_broken, s_huge):
        (reply,) = mastodon.replies_to(sid)
        assert "could not read that image" in reply["content"] and not reply["_media"]
    assert gateway.story_calls == 0
    # The foreign host was never contacted.
    assert mastodon.count("GET", "/system/media/x.jpg") == 0
    assert "Traceback" not in result.stderr
