"""Shared image intake: every format a phone sends comes out upright RGB; bad files a 422."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from talkative_common.errors import InvalidInput, status_of
from talkative_common.images import read_image, to_png

GRACE_HOPPER = Path(
    __import__("matplotlib").get_data_path(), "sample_data", "grace_hopper.jpg"
).read_bytes()


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def rejected(data: bytes, *words: str, **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read_image(data, **kwargs)  # type: ignore[arg-type]
    problem = caught.value
    assert status_of(problem) == 422
    assert problem.detail.startswith("image: ")
    assert problem.extra["errors"][0]["field"] == "image"
    for word in words:
        assert word in problem.detail, (word, problem.detail)
    return problem


def test_a_real_photo_is_read_as_rgb() -> None:
    image = read_image(GRACE_HOPPER)
    assert image.mode == "RGB" and image.size == (512, 600)
    # The photo itself, not a blank: a portrait has contrast.
    assert min(ImageStat.Stat(image).stddev) > 30


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "JPEG"])
def test_each_accepted_format(fmt: str) -> None:
    source = Image.new("RGB", (64, 48), (200, 30, 30))
    image = read_image(encode(source, fmt))
    assert image.mode == "RGB" and image.size == (64, 48)
    r, g, b = image.getpixel((32, 24))  # type: ignore[misc]
    assert r > 150 and g < 80 and b < 80


def test_exif_orientation_is_applied() -> None:
    # A landscape sensor frame tagged "rotate 90 CW to view" (orientation 6) is a portrait.
    source = Image.new("RGB", (80, 40), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 10, 40))  # red strip on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    image = read_image(encode(source, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (40, 80)
    r, _, b = image.getpixel((20, 2))  # type: ignore[misc]
    assert r > 200 and b < 60, "the left edge must now be at the top"


def test_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((0, 200, 0), (200, 0, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = read_image(data)
    r, g, _ = image.getpixel((5, 5))  # type: ignore[misc]
    assert g > 150 and r < 50


@pytest.mark.parametrize(
    ("mode", "fmt", "colour"),
    [
        ("L", "PNG", 128),
        ("L", "JPEG", 128),
        ("CMYK", "JPEG", (0, 255, 255, 0)),  # CMYK red
        ("I;16", "PNG", 40000),
        ("1", "PNG", 1),
    ],
)
def test_colour_modes_become_rgb(mode: str, fmt: str, colour: object) -> None:
    image = read_image(encode(Image.new(mode, (16, 16), colour), fmt))  # type: ignore[arg-type]
    assert image.mode == "RGB" and image.size == (16, 16)
    if mode == "CMYK":
        r, g, b = image.getpixel((8, 8))  # type: ignore[misc]
        assert r > 200 and g < 60 and b < 60


def test_transparency_is_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 10, 20))
    image = read_image(encode(rgba, "PNG"))
    assert image.getpixel((15, 10)) == (255, 255, 255)
    assert image.getpixel((5, 10)) == (255, 0, 0)
    palette = rgba.convert("P")
    palette.info["transparency"] = palette.getpixel((15, 10))
    assert read_image(encode(palette, "PNG", transparency=palette.info["transparency"])).getpixel(
        (15, 10)
    ) == (255, 255, 255)


def test_empty_and_non_image_files() -> None:
    rejected(b"", "empty")
    rejected(b"Dear diary, today I took a photo.\n" * 20, "not a JPEG, PNG, WebP or GIF")
    rejected(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a JPEG")
    # A real image in a format not accepted (BMP) is refused by its bytes, whatever its name.
    rejected(encode(Image.new("RGB", (8, 8)), "BMP"), "not a JPEG")


def test_truncated_files() -> None:
    rejected(GRACE_HOPPER[: len(GRACE_HOPPER) // 2], "damaged or cut short")
    png = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    rejected(png[: len(png) - 200], "damaged or cut short")
    rejected(png[:30])


def test_pixel_limit_is_checked_before_decoding() -> None:
    big = encode(Image.new("RGB", (300, 200)), "PNG")
    rejected(big, "300 x 200", "50,000", max_pixels=50_000)
    assert read_image(big, max_pixels=60_000).size == (300, 200)


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bomb(side: int) -> None:
    # 100 MP (over our limit) and 400 MP (over Pillow's own) of one bit compress to a few
    # kB each: refused from the header, never decoded.
    bomb = encode(Image.new("1", (side, side)), "PNG")
    assert len(bomb) < 200_000
    rejected(bomb, "pixels", "smaller photo")


def test_field_name_is_reported() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_image(b"", field="media")
    assert caught.value.detail.startswith("media: ")


def test_to_png_round_trips() -> None:
    image = read_image(GRACE_HOPPER)
    again = read_image(to_png(image))
    assert again.tobytes() == image.tobytes()


def test_probe_reads_the_header_only() -> None:
    from talkative_common.images import probe_image

    assert probe_image(GRACE_HOPPER) == (512, 600)
    # Cut short after its header: the probe cannot tell, the decode refuses it.
    half = GRACE_HOPPER[: len(GRACE_HOPPER) // 2]
    assert probe_image(half) == (512, 600)
    rejected(half, "damaged or cut short")
    for data, says in ((b"", "empty"), (b"plain text", "not a JPEG")):
        with pytest.raises(InvalidInput, match=says):
            probe_image(data)
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")
    with pytest.raises(InvalidInput, match="pixels"):
        probe_image(bomb)
