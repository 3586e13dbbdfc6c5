"""The story card: photo, caption and story on one PNG sized for social networks.

1080 x 1350 (4:5 portrait), the size Instagram, Mastodon and X show whole in a
timeline. The photo fills the top at its own aspect ratio (letterboxed on the
card colour), the caption follows in italics, then the story in a serif face,
largest size that fits; when even the smallest size does not fit, the story is
cut after its last whole sentence that fits (an ellipsis only when no sentence
does). DejaVu fonts are bundled, so every Latin accent renders on any machine.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = Path(__file__).parent / "static" / "fonts"
WIDTH, HEIGHT = 1080, 1350
MARGIN = 64
PHOTO_MAX_H = 620
BACKGROUND = (250, 246, 238)
INK = (34, 30, 28)
MUTED = (110, 100, 92)
STORY_SIZES = (40, 36, 33, 30, 28, 26, 24)
ALT_TEXT_MAX = 1000  # X's limit; Mastodon allows 1500
_SENTENCE_END = re.compile(r"[.!?;:](?=\s|$)")


@lru_cache(maxsize=32)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / name), size)


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap by rendered width; paragraphs kept; over-long words split."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while face.getlength(word) > width:  # a word wider than the card
                cut = max(1, int(len(word) * width / face.getlength(word)) - 1)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def cut_at_sentence(text: str, fits: Callable[[str], bool]) -> str:
    """The longest prefix ending a sentence that `fits`; else words + an ellipsis."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    for end in reversed(ends):
        if fits(text[:end]):
            return text[:end]
    words = text.split(" ")
    while words and not fits(" ".join(words) + "…"):
        words.pop()
    return " ".join(words) + "…"


def fit_photo(photo: Image.Image) -> Image.Image:
    box_w = WIDTH - 2 * MARGIN
    scale = min(box_w / photo.width, PHOTO_MAX_H / photo.height)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.resize(size, Image.Resampling.LANCZOS)


def render_card(photo: Image.Image, caption: str, story: str, model: str) -> tuple[bytes, str]:
    """-> (PNG bytes, the story as it appears on the card)."""
    card = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(card)
    shown = fit_photo(photo.convert("RGB"))
    card.paste(shown, ((WIDTH - shown.width) // 2, MARGIN))
    y = MARGIN + shown.height + 36
    text_w = WIDTH - 2 * MARGIN

    caption_face = font("DejaVuSerif-Italic.ttf", 30)
    for line in wrap(f"“{caption}”", caption_face, text_w)[:3]:
        draw.text((MARGIN, y), line, font=caption_face, fill=MUTED)
        y += 40
    y += 18
    draw.line((MARGIN, y, WIDTH - MARGIN, y), fill=(210, 200, 188), width=2)
    y += 30

    footer_face = font("DejaVuSans.ttf", 22)
    footer_y = HEIGHT - MARGIN + 8 - 22
    room = footer_y - 24 - y

    def layout(text: str, size: int) -> list[str] | None:
        face = font("DejaVuSerif.ttf", size)
        lines = wrap(text, face, text_w)
        return lines if len(lines) * round(size * 1.4) <= room else None

    body = story.strip()
    size = next((s for s in STORY_SIZES if layout(body, s) is not None), STORY_SIZES[-1])
    if layout(body, size) is None:
        body = cut_at_sentence(body, lambda t: layout(t, size) is not None)
    face = font("DejaVuSerif.ttf", size)
    for line in layout(body, size) or []:
        draw.text((MARGIN, y), line, font=face, fill=INK)
        y += round(size * 1.4)

    draw.text((MARGIN, footer_y), f"Talkative · {model}", font=footer_face, fill=MUTED)
    out = io.BytesIO()
    card.save(out, format="PNG", optimize=False)
    return out.getvalue(), body


def alt_text(caption: str, story: str) -> str:
    """A description for screen readers, within the platforms' alt-text limits."""
    text = f"A photo of {caption.strip().rstrip('.')}. Below it, a story: {story.strip()}"
    if len(text) <= ALT_TEXT_MAX:
        return text
    return text[: ALT_TEXT_MAX - 1].rsplit(" ", 1)[0] + "…"


def photo_for_card(photo: Image.Image, max_side: int) -> bytes:
    """What the store keeps of an upload: a JPEG no larger than the card needs."""
    small = photo.convert("RGB")
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return out.getvalue()
