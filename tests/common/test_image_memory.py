"""Bounded image memory: reduced decoding, the per-image byte limit and the decode budget."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageStat

from talkative_common import memory
from talkative_common.errors import InvalidInput, Unavailable, status_of
from talkative_common.images import DecodeBudget, decoded_bytes, read_image
from tests.common.test_images import GRACE_HOPPER, encode, rejected


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags.tobytes()


def held(data: bytes, **kwargs: object) -> tuple[Image.Image, int]:
    """The picture read, and the most bytes its decode took from a budget."""
    budget = DecodeBudget(10**12)
    image = read_image(data, budget=budget, **kwargs)  # type: ignore[arg-type]
    assert budget.in_flight == 0
    return image, budget.peak


# --- reduced decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"), [((3000, 2000), (500, 333)), ((900, 3001), (150, 500))]
)
def test_max_side_bounds_the_longer_side_and_keeps_the_aspect(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    image = read_image(encode(Image.new("RGB", size, (10, 200, 30)), "PNG"), max_side=500)
    assert image.mode == "RGB" and image.size == expected
    assert image.getpixel((expected[0] // 2, expected[1] // 2)) == (10, 200, 30)


def test_a_picture_already_small_enough_is_not_resampled() -> None:
    assert read_image(GRACE_HOPPER, max_side=600).tobytes() == read_image(GRACE_HOPPER).tobytes()
    # Exactly max_side on its longer side is small enough too.
    assert read_image(GRACE_HOPPER, max_side=600).size == (512, 600)


def test_shrunk_photo_is_the_photo() -> None:
    """A real photo shrunk while decoding looks like the full decode shrunk afterwards."""
    big = Image.open(io.BytesIO(GRACE_HOPPER)).resize((2048, 2400), Image.Resampling.LANCZOS)
    for data in (encode(big, "PNG"), encode(big, "JPEG", quality=95)):
        small = read_image(data, max_side=300)
        assert small.size == (256, 300)
        reference = read_image(data).resize(small.size, Image.Resampling.LANCZOS)
        stats, expected = ImageStat.Stat(small), ImageStat.Stat(reference)
        for got, want in zip(
            stats.mean + stats.stddev, expected.mean + expected.stddev, strict=True
        ):
            assert abs(got - want) < 2, (stats.mean, expected.mean)
        assert min(stats.stddev) > 30  # still a portrait with contrast, not a blur


def test_jpeg_is_decoded_at_a_reduced_scale() -> None:
    # 4000 x 3000 colour is 48 MB decoded in full; with max_side 500, libjpeg decodes at 1/8.
    data = encode(Image.new("RGB", (4000, 3000), (200, 30, 30)), "JPEG", quality=90)
    image, peak = held(data, max_side=500)
    assert image.size == (500, 375)
    assert peak == decoded_bytes("RGB", (500, 375)) == 500 * 375 * 4
    _, full = held(data)
    assert full == 4000 * 3000 * 4
    # 1/4 when 1/8 would be smaller than asked: 4000 / 8 = 500 < 600.
    _, peak = held(data, max_side=600)
    assert peak == 1000 * 750 * 4


def test_png_is_counted_in_full_and_freed_shrunk() -> None:
    data = encode(Image.new("RGBA", (3000, 2000), (0, 0, 255, 255)), "PNG")
    image, peak = held(data, max_side=500)
    assert peak == 3000 * 2000 * 4 and image.size == (500, 333)


def test_exif_rotated_jpeg_is_upright_after_a_reduced_decode() -> None:
    # A landscape sensor frame tagged "rotate 90 CW to view" (6), red strip on its left edge.
    source = Image.new("RGB", (4000, 2000), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 400, 2000))
    data = encode(source, "JPEG", exif=exif(6), quality=95)
    image, peak = held(data, max_side=500)
    assert peak == 500 * 250 * 4, "decoded at 1/8"
    assert image.size == (250, 500)
    r, _, b = image.getpixel((125, 10))  # type: ignore[misc]
    assert r > 200 and b < 60, "the left edge must now be at the top"
    r, _, b = image.getpixel((125, 490))  # type: ignore[misc]
    assert b > 200 and r < 60


@pytest.mark.parametrize(("orientation", "size"), [(3, (500, 250)), (8, (250, 500))])
def test_exif_orientation_of_a_png_read_after_its_pixels(
    orientation: int, size: tuple[int, int]
) -> None:
    source = Image.new("RGB", (2000, 1000), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 200, 1000))  # red on the left
    image = read_image(encode(source, "PNG", exif=exif(orientation)), max_side=500)
    assert image.size == size
    corner = {3: (495, 125), 8: (125, 495)}[orientation]  # where the left edge went
    r, _, b = image.getpixel(corner)  # type: ignore[misc]
    assert r > 200 and b < 60


def test_transparency_is_flattened_on_the_small_copy() -> None:
    rgba = Image.new("RGBA", (3000, 1000), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 1000, 1000))
    rgba.paste((255, 0, 0, 128), (1000, 0, 2000, 1000))
    image = read_image(encode(rgba, "PNG"), max_side=300)
    assert image.size == (300, 100)
    assert image.getpixel((50, 50)) == (255, 0, 0)
    r, g, b = image.getpixel((150, 50))  # type: ignore[misc]
    assert r == 255 and 120 < g < 135 and 120 < b < 135  # half red over white
    assert image.getpixel((250, 50)) == (255, 255, 255)


def test_palette_with_transparency_is_flattened_on_the_small_copy() -> None:
    rgba = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 1000, 1000))
    palette = rgba.convert("P")
    clear = palette.getpixel((1500, 500))
    data = encode(palette, "PNG", transparency=clear)
    image, peak = held(data, max_side=300)
    assert peak == 2000 * 1000, "one byte a pixel"
    assert image.getpixel((50, 50)) == (255, 0, 0)
    assert image.getpixel((250, 100)) == (255, 255, 255)
    gif, _ = held(encode(palette, "GIF", transparency=clear), max_side=300)
    assert gif.getpixel((250, 100)) == (255, 255, 255) and gif.getpixel((50, 50)) == (255, 0, 0)


def test_16_bit_grey_is_scaled_by_the_range_of_the_whole_picture() -> None:
    # The top half spans 1000..2000, the bottom 1000..60000: scaled as one picture the top
    # stays near black. Scaled band by band (a band is far fewer rows than the top half),
    # each band by its own range, the top right would be white.
    values = np.full((6000, 2000), 1000, dtype=np.uint16)
    values[:3000, 1000:] = 2000
    values[3000:, 1000:] = 60000
    grey = Image.fromarray(values)
    assert grey.mode == "I;16" and grey.getextrema() == (1000, 60000)
    data = encode(grey, "PNG")
    image, peak = held(data, max_side=600)
    assert peak == 2000 * 6000 * 2, "two bytes a pixel"
    assert image.size == (200, 600)
    assert image.getpixel((50, 50)) == (0, 0, 0)
    assert max(image.getpixel((150, 50))) <= 6  # type: ignore[arg-type]
    assert min(image.getpixel((150, 550))) >= 250  # type: ignore[arg-type]
    # The same picture read in full agrees.
    full = read_image(data)
    assert max(full.getpixel((1500, 500))) <= 6  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_big_files_are_still_refused(fmt: str) -> None:
    noise = Image.effect_noise((1600, 1200), 60).convert("RGB")
    data = encode(noise, fmt, quality=90) if fmt == "JPEG" else encode(noise, fmt)
    budget = DecodeBudget(10**9)
    with pytest.raises(InvalidInput) as caught:
        read_image(data[: len(data) * 2 // 3], max_side=300, budget=budget)
    assert "damaged or cut short" in caught.value.detail
    assert budget.in_flight == 0, "a failed decode gives its bytes back"


# --- the per-image byte limit -------------------------------------------------------------------


def test_decoded_bytes_count_what_pillow_holds() -> None:
    assert decoded_bytes("RGBA", (10, 10)) == 400
    assert decoded_bytes("RGB", (10, 10)) == 400  # padded to four bytes a pixel
    assert decoded_bytes("I;16", (10, 10)) == 200
    assert decoded_bytes("L", (10, 10)) == decoded_bytes("P", (10, 10)) == 100
    assert decoded_bytes("CMYK", (10, 10)) == decoded_bytes("I", (10, 10)) == 400


def test_per_image_byte_limit_counts_bytes_not_pixels() -> None:
    size = (600, 500)  # 300,000 pixels
    limit = 600_000
    rgba = encode(Image.new("RGBA", size, (1, 2, 3, 4)), "PNG")
    problem = rejected(
        rgba, "600 x 500 pixels of RGBA", "1,200,000 bytes", "600,000 allowed", max_bytes=limit
    )
    assert problem.extra["errors"][0]["message"].endswith("send a smaller photo")
    rejected(encode(Image.new("RGB", size), "PNG"), "1,200,000 bytes", max_bytes=limit)
    # The same pixels in one byte (grey) or two (16-bit grey) fit.
    assert read_image(encode(Image.new("L", size), "PNG"), max_bytes=limit).size == size
    assert read_image(encode(Image.new("I;16", size), "PNG"), max_bytes=limit).size == size
    rejected(encode(Image.new("I;16", size), "PNG"), "I;16", "600,000 bytes", max_bytes=599_999)


def test_per_image_byte_limit_counts_a_jpeg_at_its_reduced_scale() -> None:
    data = encode(Image.new("RGB", (4000, 3000), (9, 9, 9)), "JPEG")
    rejected(data, "4000 x 3000 pixels of RGB take 48,000,000 bytes", max_bytes=10_000_000)
    image = read_image(data, max_side=500, max_bytes=1_000_000)
    assert image.size == (500, 375)
    rejected(data, "read at 500 x 375", "750,000 bytes", max_side=500, max_bytes=700_000)


def test_per_image_byte_limit_comes_after_the_pixel_check() -> None:
    bomb = encode(Image.new("1", (8000, 8000)), "PNG")
    rejected(bomb, "8000 x 8000 pixels is more than", max_bytes=10)


# --- the decode budget --------------------------------------------------------------------------


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(target())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """A bounded condition wait: the thread under test parks itself in the budget."""
    event = threading.Event()
    for _ in range(2000):
        if condition():
            return
        event.wait(0.005)
    pytest.fail(f"never saw: {what}")


def test_budget_makes_big_decodes_wait_their_turn_in_order() -> None:
    budget = DecodeBudget(100)
    order: list[str] = []
    release_first = threading.Event()

    def take(name: str, nbytes: int, until: threading.Event | None = None) -> Callable[[], None]:
        def run() -> None:
            with budget.hold(nbytes):
                order.append(name)
                if until is not None:
                    until.wait()

        return run

    first, _ = in_thread(take("first", 60, release_first))
    wait_until(lambda: budget.in_flight == 60, "the first holds 60")
    second, _ = in_thread(take("second", 60))
    wait_until(lambda: budget.waiting == 1, "the second waits (60 + 60 > 100)")
    # 10 more bytes would fit, but the second came first: no overtaking, no starving.
    third, _ = in_thread(take("third", 10))
    wait_until(lambda: budget.waiting == 2, "the third waits behind the second")
    assert order == ["first"]
    release_first.set()
    for thread in (first, second, third):
        thread.join()
    assert order == ["first", "second", "third"]
    assert budget.in_flight == 0 and budget.waiting == 0 and budget.peak <= 100


def test_budget_lets_a_picture_bigger_than_itself_go_alone() -> None:
    budget = DecodeBudget(100)
    with budget.hold(150):
        assert budget.in_flight == 150
    assert budget.in_flight == 0


def test_budget_wait_has_a_limit_then_503() -> None:
    budget = DecodeBudget(100, timeout_s=0.05)
    with budget.hold(80):
        with pytest.raises(Unavailable) as caught, budget.hold(30):
            pass
        assert budget.waiting == 0, "a request that gave up leaves the queue"
        with budget.hold(20):  # what fits still goes
            assert budget.in_flight == 100
    assert status_of(caught.value) == 503 and caught.value.retry_after_s == 1
    assert "try again" in caught.value.detail
    assert budget.in_flight == 0


def test_budget_bounds_concurrent_decodes() -> None:
    data = encode(Image.new("RGBA", (1000, 800), (5, 6, 7, 255)), "PNG")
    one = decoded_bytes("RGBA", (1000, 800))
    budget = DecodeBudget(2 * one)
    threads = [in_thread(lambda: read_image(data, max_side=100, budget=budget)) for _ in range(6)]
    for thread, _ in threads:
        thread.join()
    assert all(isinstance(out[0], Image.Image) and out[0].size == (100, 80) for _, out in threads)
    assert budget.peak <= 2 * one and budget.in_flight == 0


def test_budget_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        DecodeBudget(0)


# --- malloc -------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_tuning_is_safe_to_call() -> None:
    import ctypes.util

    glibc = "libc.so" in (ctypes.util.find_library("c") or "") and memory._glibc() is not None
    assert memory.tune_malloc() is glibc
    assert isinstance(memory.trim(), bool)
