"""Reply composition, word filter and image checks: the pure parts."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from twitter.twitter_utils import calc_expected_status_length

from bot_service import compose
from bot_service.media import MediaDownloader, check_image
from bot_service.platforms.base import MediaRejected

TYPES = ["image/jpeg", "image/png"]


def test_fit_cuts_at_a_word_and_marks_it() -> None:
    text = "one two three four five six"
    assert compose.fit(text, 100) == text
    cut = compose.fit(text, 14)
    assert cut == "one two three…" and len(cut) <= 14
    assert compose.fit("x" * 50, 10) == "x" * 9 + "…"


def test_reply_text_never_cuts_the_mention_and_counts_like_x() -> None:
    story = "漢字 " * 200  # X counts CJK characters double
    text = compose.reply_text("someone", story, 280, calc_expected_status_length)
    assert text.startswith("@someone ")
    assert calc_expected_status_length(text) <= 280 < len(text) * 2


def test_alt_text_holds_caption_and_story_within_limit() -> None:
    alt = compose.alt_text("a dog on a beach.", "It ran. " * 400, 1000)
    assert alt.startswith("Story card. The photo shows a dog on a beach. Story: It ran.")
    assert len(alt) <= 1000


def test_word_filter_matches_whole_words_case_insensitively() -> None:
    f = compose.WordFilter(["darn", "bad word"])
    assert f.blocked("Darn it") == ["darn"]
    assert f.blocked("a BAD WORD here") == ["bad word"]
    assert f.blocked("darnation is fine") == []
    assert compose.WordFilter([]).blocked("anything") == []


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_check_image_accepts_real_and_refuses_broken(photo: bytes, corrupt_photo: bytes):
    assert check_image(photo, TYPES) == "image/jpeg"
    assert check_image(_png((4, 4)), TYPES) == "image/png"
    for bad in (b"", b"GIF89a nonsense", corrupt_photo, b"<svg></svg>"):
        with pytest.raises(MediaRejected):
            check_image(bad, TYPES)
    with pytest.raises(MediaRejected, match="not accepted"):
        check_image(_png((4, 4)), ["image/jpeg"])


def test_check_image_refuses_decompression_bombs() -> None:
    with pytest.raises(MediaRejected, match="too large"):
        check_image(_png((8000, 6000)), TYPES)  # 48 Mpx of one colour: a tiny file


def test_downloader_host_allow_list() -> None:
    d = MediaDownloader(["twimg.com"], max_bytes=10, timeout_s=1, allowed_types=TYPES)
    assert d.host_allowed("https://pbs.twimg.com/media/x.jpg")
    assert not d.host_allowed("https://twimg.com.evil.example/x.jpg")
    assert not d.host_allowed("file:///etc/passwd")
    with pytest.raises(MediaRejected, match="not downloaded"):
        d.fetch("https://evil.example/x.jpg")
    d.close()
