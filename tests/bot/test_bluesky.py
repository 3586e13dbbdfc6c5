"""The atproto SDK talking to a local PDS/AppView that follows the documented lexicons."""

from __future__ import annotations

import io
import sqlite3
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import regex
from PIL import Image

from bot_service.platforms.base import Mention, PlatformError, Reply
from bot_service.platforms.bluesky import BlueskyPlatform, cut, facets, fit_image, post_length
from tests.bot.conftest import bluesky_env, run_bot, settings_from
from tests.bot.fakes.bluesky import BOT_HANDLE, PASSWORD, FakeBluesky
from tests.bot.gateway import CountingGateway

SUBJECT_WORDS = ("cat", "coffee", "rocket")  # what the test captioner's captions name
CLUSTER = regex.compile(r"\X")
CREATE = "com.atproto.repo.createRecord"


def _states(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        return dict(db.execute("SELECT mention_id, state FROM mentions").fetchall())


def _span(text: str, facet: dict[str, Any]) -> str:
    index = facet["index"]
    return text.encode()[index["byteStart"] : index["byteEnd"]].decode()


def _ref(strong_ref: dict[str, Any]) -> tuple[str, str]:
    """A com.atproto.repo.strongRef's uri and cid (its optional $type aside)."""
    return strong_ref["uri"], strong_ref["cid"]


def _blob(bluesky: FakeBluesky, post: dict[str, Any]) -> bytes:
    image = post["record"]["embed"]["images"][0]["image"]
    return bluesky.blobs[(post["did"], image["ref"]["$link"])][0]


def _no_credentials(bluesky: FakeBluesky, *outputs: str) -> None:
    for out in outputs:
        assert PASSWORD not in out
        for token in bluesky.issued:
            assert token not in out and token.split(".")[2] not in out


def test_mentions_and_replies_answered_with_card_alt_text_and_reply_refs(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    own_thread = bluesky.post_as(BOT_HANDLE, "Send me photos!")
    other_thread = bluesky.post_as("dave.test", "look at my cat")
    plain = bluesky.mention("user0.test", "story please", (photo,))
    reply = bluesky.mention("user1.test", "", (photo,), reply_to=own_thread, reason="reply")
    in_thread = bluesky.mention("user2.test", "this one", (photo,), reply_to=other_thread)
    quoted = bluesky.mention("user3.test", "", (photo,), quote=other_thread)
    no_image = bluesky.mention("curious.test", "what do you do?")
    own = bluesky.mention(BOT_HANDLE, "my own post", (photo,))
    bluesky.notify_other("fan.test", "like")
    env = bluesky_env(tmp_path, gateway, bluesky)

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr

    roots = {plain: plain, reply: own_thread, in_thread: other_thread, quoted: quoted}
    for i, (uri, root) in enumerate(roots.items()):
        (answer,) = bluesky.replies_to(uri)
        record = answer["record"]
        handle, did = f"user{i}.test", bluesky.user(f"user{i}.test")
        # The reply refs: parent is the mention itself; root is its thread's first post.
        assert _ref(record["reply"]["parent"]) == (uri, bluesky.posts[uri]["cid"])
        assert _ref(record["reply"]["root"]) == (root, bluesky.posts[root]["cid"])
        # The text: @author first, a facet naming the author's DID over exactly those bytes.
        text = record["text"]
        assert text.startswith(f"@{handle} ") and post_length(text) <= 300
        mention_facet = record["facets"][0]
        assert mention_facet["features"] == [
            {"$type": "app.bsky.richtext.facet#mention", "did": did}
        ]
        assert _span(text, mention_facet) == f"@{handle}"
        # The card: a PNG blob, alt text, and its own width and height as aspect ratio.
        (image,) = record["embed"]["images"]
        card = _blob(bluesky, answer)
        assert card.startswith(b"\x89PNG") and image["image"]["mimeType"] == "image/png"
        with Image.open(io.BytesIO(card)) as img:
            ratio = image["aspectRatio"]
            assert (ratio["width"], ratio["height"]) == (img.width, img.height)
        assert image["alt"].startswith("Story card. The photo shows ")
        assert any(w in image["alt"].lower() for w in SUBJECT_WORDS)
    (help_reply,) = bluesky.replies_to(no_image)
    assert "Send me a photo" in help_reply["record"]["text"]
    assert "embed" not in help_reply["record"]
    assert bluesky.replies_to(own) == [] and _states(tmp_path)[own] == "skipped"
    assert gateway.story_calls == 4
    assert bluesky.count("GET", "com.atproto.sync.getBlob") == 0  # the CDN by default
    assert bluesky.count("POST", CREATE) == 5

    # The cursor (and updateSeen) moved past everything: a second run answers nothing new,
    # with the saved session: no second createSession.
    again = run_bot(env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "recorded 0, replied 0" in again.stdout
    assert bluesky.count("POST", CREATE) == 5
    assert bluesky.seen_at is not None
    assert bluesky.count("POST", "com.atproto.server.createSession") == 1
    session = tmp_path / "bluesky-session"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    _no_credentials(bluesky, result.stdout, result.stderr, again.stdout, again.stderr)


def test_session_refreshed_after_expired_token_and_login_when_refresh_refused(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    env = bluesky_env(tmp_path, gateway, bluesky)
    outputs: list[str] = []

    def answer_one(name: str) -> None:
        uri = bluesky.mention(name, "hello?")
        result = run_bot(env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert len(bluesky.replies_to(uri)) == 1
        outputs.extend([result.stdout, result.stderr])

    answer_one("first.test")
    assert bluesky.count("POST", "com.atproto.server.createSession") == 1

    # The access token runs out between runs: 400 ExpiredToken, one refreshSession, and
    # the call again; the password is not used.
    bluesky.expire_access_tokens()
    answer_one("second.test")
    # The run's first call (marking the recorded notifications seen) was refused.
    assert [p for _, _, p, st in bluesky.requests if st == 400] == [
        "app.bsky.notification.updateSeen"
    ]
    assert bluesky.count("POST", "com.atproto.server.refreshSession") == 1
    assert bluesky.count("POST", "com.atproto.server.createSession") == 1

    # The refresh token is refused too (revoked): only then a new login.
    bluesky.expire_access_tokens()
    bluesky.revoke_refresh_tokens()
    answer_one("third.test")
    assert bluesky.count("POST", "com.atproto.server.createSession") == 2
    _no_credentials(bluesky, *outputs)


def test_429_honoured_until_reset(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    uri = bluesky.mention("user.test", "", (photo,))
    bluesky.rate_limit("app.bsky.notification.listNotifications", 1.0)
    bluesky.rate_limit("com.atproto.repo.uploadBlob", 1.0)

    result = run_bot(bluesky_env(tmp_path, gateway, bluesky), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(bluesky.replies_to(uri)) == 1

    def calls(nsid: str) -> list[tuple[float, int]]:
        return [(t, st) for t, _, p, st in bluesky.requests if p == nsid]

    polls = calls("app.bsky.notification.listNotifications")
    uploads = calls("com.atproto.repo.uploadBlob")
    assert [st for _, st in polls][:2] == [429, 200]  # one refusal, then it waited
    assert polls[1][0] >= bluesky.resets["app.bsky.notification.listNotifications"]
    assert [st for _, st in uploads] == [429, 200]
    assert uploads[1][0] >= bluesky.resets["com.atproto.repo.uploadBlob"]
    assert "Bluesky rate limit" in result.stderr


def test_remaining_zero_waits_without_asking(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    uri = bluesky.mention("user.test", "hello?")
    bluesky.exhaust("app.bsky.notification.listNotifications", 1.0)

    result = run_bot(bluesky_env(tmp_path, gateway, bluesky), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(bluesky.replies_to(uri)) == 1
    # The poll's answer said none left: the next request came after the reset, no 429.
    nsid = "app.bsky.notification.listNotifications"
    reset = int(bluesky.spent[nsid] + 0.999)  # the RateLimit-Reset it was given
    times = [t for t, _, _, _ in bluesky.requests]
    first_poll = times.index(next(t for t, _, p, _ in bluesky.requests if p == nsid))
    assert min(times[first_poll + 1 :]) >= reset
    assert 429 not in [st for _, _, _, st in bluesky.requests]


def test_a_burst_over_one_page_is_read_back_to_the_cursor(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    env = bluesky_env(tmp_path, gateway, bluesky)
    first = bluesky.mention("early.test", "hi")
    assert run_bot(env, tmp_path).returncode == 0  # the cursor now stands after `first`
    burst = [bluesky.mention(f"fan{i}.test", "hi") for i in range(130)]

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [len(bluesky.replies_to(u)) for u in [first, *burst]] == [1] * 131
    assert "recorded 130, replied 130" in result.stdout
    pages = [t for t, _, p, _ in bluesky.requests if p == "app.bsky.notification.listNotifications"]
    assert len(pages) >= 3  # the first run's page, then two pages back to the cursor


def test_300_graphemes_with_emoji_and_combining_marks_and_facets_intact(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    # 6 clusters of 4 to 25 bytes each per word, a link and a tag early: the reply is cut
    # by graphemes (and the 3000-byte limit), never inside a cluster, facets still right.
    words = ["👩‍👩‍👧‍👦🇫🇷e\u0301👍🏽ñ\u0303🏳️‍🌈"] * 90
    help_text = "Voilà ☕ see https://example.com/story and #photo first! " + " ".join(words)
    uri = bluesky.mention("emile.test", "?")
    env = bluesky_env(tmp_path, gateway, bluesky, help_reply=help_text)

    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    (answer,) = bluesky.replies_to(uri)
    record = answer["record"]
    text = record["text"]
    clusters = CLUSTER.findall(text)
    assert len(clusters) <= 300 and len(text.encode()) <= 3000
    assert text.endswith("…") and len(text) > 100
    # Every cluster is whole: the reply (less the ellipsis) is a prefix of the full text,
    # cluster by cluster.
    full = CLUSTER.findall(f"@emile.test {help_text}")
    assert clusters[:-1] == full[: len(clusters) - 1]
    spans = {f["features"][0]["$type"].split("#")[1]: _span(text, f) for f in record["facets"]}
    assert spans == {
        "mention": "@emile.test",
        "link": "https://example.com/story",
        "tag": "#photo",
    }


def test_media_only_from_an_allowed_cdn(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    # The same fake under another name, not in BOT_MEDIA_HOSTS: never contacted.
    uri = bluesky.mention("a.test", "", (photo,))
    foreign = bluesky.base_url.replace("127.0.0.1", "localhost")
    result = run_bot(bluesky_env(tmp_path, gateway, bluesky, bluesky_cdn_url=foreign), tmp_path)
    assert result.returncode == 0, result.stderr
    (refused,) = bluesky.replies_to(uri)
    assert "could not read that image" in refused["record"]["text"]
    assert "embed" not in refused["record"]
    assert not any(p.startswith("/img/") for _, _, p, _ in bluesky.requests)
    assert gateway.story_calls == 0


def test_media_from_the_authors_pds_only_when_allowed(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    # getBlob at the PDS named in the author's DID document: one allowed, one not.
    near = bluesky.mention("near.test", "", (photo,))
    bluesky.pds_of[bluesky.user("far.test")] = bluesky.base_url.replace("127.0.0.1", "localhost")
    far = bluesky.mention("far.test", "", (photo,))
    env = bluesky_env(tmp_path, gateway, bluesky, bluesky_media_source="pds")
    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    (story,) = bluesky.replies_to(near)
    assert story["record"]["embed"]["images"][0]["alt"].startswith("Story card.")
    (refused,) = bluesky.replies_to(far)
    assert "could not read that image" in refused["record"]["text"]
    assert bluesky.count("GET", "com.atproto.sync.getBlob") == 1  # near's, from its PDS
    assert not any(p.startswith("/img/") for _, _, p, _ in bluesky.requests)
    assert gateway.story_calls == 1
    assert "Traceback" not in result.stderr


def _caption_of(gateway: CountingGateway, photo: bytes) -> str:
    answer = httpx.post(
        f"{gateway.url}/v1/captions", files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["captions"][0]["text"])


def test_word_filter(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, photo: bytes
) -> None:
    word = _caption_of(gateway, photo).rstrip(".").split()[-1]
    uri = bluesky.mention("bob.test", "", (photo,))
    env = bluesky_env(
        tmp_path, gateway, bluesky, word_filter=f'["{word.upper()}"]', story_retries_on_filter=2
    )
    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    (answer,) = bluesky.replies_to(uri)
    assert "not fit to share" in answer["record"]["text"] and "embed" not in answer["record"]
    assert word not in answer["record"]["text"].lower()
    assert gateway.story_calls == 3  # the first story and two new seeds


@pytest.mark.parametrize(
    ("limit", "status"),
    [
        ("max_upload_bytes", 413),  # uploadBlob over the PDS's limit: PayloadTooLarge
        ("image_max_bytes", 400),  # createRecord over the image's maxSize: BlobTooLarge
    ],
)
def test_blob_too_large_is_the_mentions_failure_not_an_outage(
    limit: str,
    status: int,
    tmp_path: Path,
    gateway: CountingGateway,
    bluesky: FakeBluesky,
    photo: bytes,
) -> None:
    setattr(bluesky, limit, 100)
    uri = bluesky.mention("user.test", "", (photo,))
    env = bluesky_env(tmp_path, gateway, bluesky, max_attempts=1)
    result = run_bot(env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert bluesky.replies_to(uri) == []
    assert _states(tmp_path)[uri] == "failed"  # a dead letter, not a pause
    assert "dead letter" in result.stderr and "Traceback" not in result.stderr
    nsid = "com.atproto.repo.uploadBlob" if status == 413 else CREATE
    assert status in bluesky.statuses(nsid)


def test_invalid_request_is_a_platform_error(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    uri = bluesky.mention("user.test", "hi")
    platform = BlueskyPlatform(settings_from(bluesky_env(tmp_path, gateway, bluesky)))
    try:
        (mention,) = platform.fetch_mentions(None, 10).mentions
        platform._refs[uri] = ("not-a-cid", uri, "not-a-cid")  # a strongRef the PDS refuses
        with pytest.raises(PlatformError, match="InvalidRequest"):
            platform.post_reply(mention, Reply(text="@user.test hello"))
        assert bluesky.statuses(CREATE) == [400]
        # The post gone from the AppView: refused for good, too.
        gone = Mention(id=uri + "x", author_id="did:plc:x", author_handle="x", text="")
        with pytest.raises(PlatformError, match="gone"):
            platform.post_reply(gone, Reply(text="@x hello"))
    finally:
        platform.close()


def test_help_lists_bluesky_and_missing_credentials_are_named(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky
) -> None:
    env = bluesky_env(tmp_path, gateway, bluesky)
    result = run_bot(env, tmp_path, "--help")
    assert result.returncode == 0 and "bluesky" in result.stdout
    del env["BOT_BLUESKY_APP_PASSWORD"]
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    assert "needs BOT_BLUESKY_HANDLE and BOT_BLUESKY_APP_PASSWORD" in result.stderr
    assert bluesky.requests == []  # nothing was tried


# -- the text and image helpers, in process ---------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "fits"),
    [
        ("a", 300),  # 1 byte: the grapheme limit
        ("e\u0301", 300),  # a letter and its combining accent: one grapheme, 3 bytes
        ("🇫🇷", 300),  # a flag, two regional indicators: 8 bytes
        ("👩‍👩‍👧‍👦", 120),  # four people joined by ZWJ: 25 bytes; the 3000-byte limit first
    ],
)
def test_cut_keeps_whole_graphemes(unit: str, fits: int) -> None:
    text = cut(unit * 400)
    assert text.endswith("…")
    body = CLUSTER.findall(text[:-1])
    assert body == [unit] * len(body)  # no cluster split
    assert len(body) + 1 <= fits and len(text.encode()) <= 3000 and post_length(text) <= 300
    assert len(body) >= fits - 3
    assert cut("short 👍🏽") == "short 👍🏽"


def test_facets_use_utf8_byte_offsets() -> None:
    text = "@zoe.test café ☕ #matin https://exemple.fr/é"
    found = facets(text, "zoe.test", "did:plc:zoe")
    spans = [
        (f.features[0].py_type, text.encode()[f.index.byte_start : f.index.byte_end].decode())
        for f in found
    ]
    assert spans == [
        ("app.bsky.richtext.facet#mention", "@zoe.test"),
        ("app.bsky.richtext.facet#tag", "#matin"),
        ("app.bsky.richtext.facet#link", "https://exemple.fr/é"),
    ]
    # Not the author's handle at the start (a longer handle that shares it): no mention facet.
    other = facets("@zoe.tests #x", "zoe.test", "did:plc:zoe")
    assert [f.features[0].py_type for f in other] == ["app.bsky.richtext.facet#tag"]


def test_big_card_is_reencoded_to_fit() -> None:
    noise = Image.merge("RGB", [Image.effect_noise((1200, 900), 100) for _ in range(3)])
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    assert len(buf.getvalue()) > 1_000_000
    data, mime, width, height = fit_image(buf.getvalue(), "image/png")
    assert mime == "image/jpeg" and len(data) <= 1_000_000 and (width, height) == (1200, 900)
    small = io.BytesIO()
    Image.new("RGB", (30, 20)).save(small, "PNG")
    assert fit_image(small.getvalue(), "image/png")[1:] == ("image/png", 30, 20)
