"""The folder platform end to end through the real CLI: inbox in, outbox out, exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.bot.conftest import bot_env, run_bot
from tests.bot.gateway import CountingGateway

# What the test captioner's captions name (the gateway tidies their wording).
SUBJECT_WORDS = ("cat", "coffee", "rocket")


def _replies(outbox: Path) -> dict[str, dict]:
    return {
        p.name.removesuffix(".reply.json"): json.loads(p.read_text())
        for p in outbox.glob("*.reply.json")
    }


def test_three_images_three_replies_then_nothing_new(
    tmp_path: Path, gateway: CountingGateway, photo: bytes
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (inbox / name).write_bytes(photo)
    env = bot_env(tmp_path, gateway)

    first = run_bot(env, tmp_path)
    assert first.returncode == 0, first.stderr
    replies = _replies(tmp_path / "outbox")
    assert sorted(replies) == ["a.jpg", "b.jpg", "c.jpg"]
    for name, reply in replies.items():
        assert reply["in_reply_to"] == name
        assert reply["text"].startswith("@you ") and len(reply["text"]) <= 500
        assert any(w in reply["text"].lower() for w in SUBJECT_WORDS), reply["text"]
        assert reply["alt_text"].startswith("Story card. The photo shows")
        card = tmp_path / "outbox" / reply["card"]
        with Image.open(card) as img:
            assert img.format == "PNG" and img.width > 100
        assert (tmp_path / "outbox" / f"{name}.reply.txt").read_text().strip() == reply["text"]
    assert gateway.story_calls == 3 and gateway.card_calls == 3
    assert "replied 3" in first.stdout

    second = run_bot(env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "recorded 0, replied 0" in second.stdout
    assert gateway.story_calls == 3
    assert len(list((tmp_path / "outbox").glob("*.reply.json"))) == 3


def test_corrupt_image_and_no_image_get_polite_text_replies(
    tmp_path: Path, gateway: CountingGateway, corrupt_photo: bytes
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "broken.jpg").write_bytes(corrupt_photo)
    (inbox / "note.txt").write_text("hello bot")
    (inbox / "fake.png").write_bytes(b"<html>not an image</html>")
    result = run_bot(bot_env(tmp_path, gateway), tmp_path)
    assert result.returncode == 0, result.stderr
    replies = _replies(tmp_path / "outbox")
    assert replies["broken.jpg"]["card"] is None
    assert "could not read that image" in replies["broken.jpg"]["text"]
    assert "could not read that image" in replies["fake.png"]["text"]
    assert "Send me a photo" in replies["note.txt"]["text"]
    assert gateway.story_calls == 0  # bad images never reach the gateway
    assert "Traceback" not in result.stderr


def test_help_reply_off_skips_mentions_without_image(
    tmp_path: Path, gateway: CountingGateway
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "note.txt").write_text("hello")
    result = run_bot(bot_env(tmp_path, gateway, help_reply=""), tmp_path)
    assert result.returncode == 0, result.stderr
    assert _replies(tmp_path / "outbox") == {}


def test_bad_settings_and_crash_point_names_are_refused(tmp_path: Path, gateway: CountingGateway):
    env = bot_env(tmp_path, gateway, max_per_poll="0")
    result = run_bot(env, tmp_path)
    assert result.returncode != 0 and "max_per_poll" in result.stderr
    typo = run_bot(bot_env(tmp_path, gateway), tmp_path, crash_at="after_everything")
    assert typo.returncode != 0 and "known crash points" in typo.stderr
