"""Image intake shared by every service that takes a photo from a user.

The type is sniffed from the bytes (never trusted from a file name or a header), the
pixel count is read from the header and checked before anything is decoded
(decompression bombs), and the whole image is then decoded so that a truncated file
is refused here rather than inside a model. What comes out is always an upright
8-bit RGB picture: EXIF orientation applied, the first frame of an animation,
grayscale, CMYK and palette converted, transparency flattened onto white (a model
was trained on photos, which have no alpha).

Memory. With `max_side`, the picture is decoded no larger than needed: a JPEG at a
reduced scale (libjpeg's DCT scaling, `Image.draft`), any other format in full and
shrunk at once, band by band, so the conversions (flattening, 16-bit scaling) run on
the small copy and the full-size one is freed as soon as it is read. What a decode
holds is counted in bytes (`decoded_bytes`: width x height x what Pillow keeps per
pixel of that mode), refused over `max_bytes`, and taken from a `DecodeBudget` that
makes big decodes of one process wait for each other instead of all allocating at once.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from PIL import Image, UnidentifiedImageError

from talkative_common import memory
from talkative_common.errors import InvalidInput, TalkativeError, Unavailable

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
ACCEPTED = "a JPEG, PNG, WebP or GIF picture"
# Header sniffing cannot see past this many pixels in one frame: Pillow's own guard
# (DecompressionBombError at twice its limit) stays on as a second line.
DEFAULT_MAX_PIXELS = 40_000_000
# Bytes Pillow keeps per pixel of a decoded mode: one for bilevel, grey and palette, two
# for 16-bit grey, four for the rest (RGB is padded to four bytes, like RGBA and CMYK).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Every accepted picture of DEFAULT_MAX_PIXELS fits; set lower to refuse big colour PNGs.
DEFAULT_MAX_IMAGE_BYTES = 4 * DEFAULT_MAX_PIXELS
# Two such pictures decoded at once in one process; a third waits for one of them.
DEFAULT_DECODE_BUDGET_BYTES = 2 * DEFAULT_MAX_IMAGE_BYTES
# A decode this big is followed by malloc_trim, so its memory goes back to the system.
TRIM_AFTER_BYTES = 32 * 1024 * 1024
# Full-size rows converted at a time while shrinking (a band, not a second full copy).
_BAND_BYTES = 8 * 1024 * 1024
_TRANSPOSE = {  # EXIF orientation -> the transposition that makes the picture upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """Memory a picture of this mode and size takes once decoded, as Pillow holds it."""
    return size[0] * size[1] * _BYTES_PER_PIXEL.get(mode, 4)


class DecodeBudget:
    """Decoded bytes in flight in one process: big decodes wait their turn, first come first.

    Decoding runs on worker threads (asyncio.to_thread), so this is a threading
    semaphore counted in bytes. A picture alone may exceed the whole budget (it then
    waits until nothing else is decoding), so no request can wait forever; one that
    waits longer than `timeout_s` gets a 503.
    """

    def __init__(self, limit_bytes: int, *, timeout_s: float | None = None) -> None:
        if limit_bytes < 1:
            raise ValueError("a decode budget needs at least one byte")
        self.limit_bytes, self.timeout_s = limit_bytes, timeout_s
        self.in_flight = 0  # bytes held now
        self.peak = 0  # the most ever held at once
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Decodes waiting for their turn now."""
        with self._changed:
            return len(self._queue)

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        turn = object()
        with self._changed:
            self._queue.append(turn)

            def fits() -> bool:
                room = self.in_flight == 0 or self.in_flight + nbytes <= self.limit_bytes
                return self._queue[0] is turn and room

            granted = self._changed.wait_for(fits, self.timeout_s)
            self._queue.remove(turn)
            if granted:
                self.in_flight += nbytes
                self.peak = max(self.peak, self.in_flight)
            self._changed.notify_all()  # the next in line may be first now, and may fit
        if not granted:
            raise Unavailable(
                f"other big photos are being decoded and this one waited {self.timeout_s:g} s "
                "for memory; try again in a moment",
                retry_after_s=max(1, round(self.timeout_s or 1)),
            )
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= nbytes
                self._changed.notify_all()


def _reject(message: str, field: str) -> InvalidInput:
    # InvalidInput says "field: message" and lists the field in `errors` (a 422 at the edge).
    return InvalidInput(message, field=field)


def _flatten(image: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Any Pillow mode -> RGB; transparent pixels become white.

    16-bit and float grey is scaled to 8 bits by `extrema` (low, high): the range of
    the whole picture when `image` is one band of it, else the image's own.
    """
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        # Palette images may carry transparency in their info: RGBA keeps it.
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit or float grayscale: scale to 8 bits by the image's own range.
        lo, hi = extrema if extrema is not None else _grey_range(image)
        span = (hi - lo) or 1.0
        image = image.point(lambda v: (v - lo) * 255.0 / span).convert("L")
    return image.convert("RGB")


def _grey_range(image: Image.Image) -> tuple[float, float]:
    extrema = image.getextrema()  # one band: (min, max); a scan, no copy
    return float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]


def _draft(image: Image.Image, max_side: int) -> None:
    """A JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still leaves max_side."""
    width, height = image.size
    long_side = max(width, height)
    if long_side > max_side:
        # draft picks the largest scale keeping at least the size asked, on both sides.
        image.draft(
            None,
            (max(1, width * max_side // long_side), max(1, height * max_side // long_side)),
        )


def _shrink(image: Image.Image, max_side: int | None) -> Image.Image:
    """A decoded picture -> RGB, longer side at most max_side, without a second full copy.

    An integer box reduction first (the result stays at least max_side), then Lanczos
    on the small copy. RGB and grey are reduced as they are; every other mode is
    converted band by band (a few MB of full-size rows at a time): flattening onto white
    commutes with averaging, so the result is the same as Pillow's premultiplied
    reduction, which would copy the whole picture first.
    """
    width, height = image.size
    if max_side is None or max(width, height) <= max_side:
        return _flatten(image)
    factor = max(width, height) // max_side
    if image.mode in ("RGB", "L"):
        small = _flatten(image.reduce(factor) if factor > 1 else image)
    else:
        extrema = _grey_range(image) if image.mode in ("I", "I;16", "I;16B", "I;16L", "F") else None
        small = Image.new("RGB", (-(-width // factor), -(-height // factor)))
        rows = max(1, _BAND_BYTES // (width * 4) // factor) * factor
        for top in range(0, height, rows):
            band = _flatten(image.crop((0, top, width, min(height, top + rows))), extrema)
            small.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    scale = max_side / max(width, height)  # the size of the whole picture, scaled once
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return small.resize(target, Image.Resampling.LANCZOS) if small.size != target else small


@contextmanager
def _refusals(field: str) -> Iterator[None]:
    """What Pillow raises on a bad file -> InvalidInput a person can act on; bomb warnings
    are errors inside."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except TalkativeError:  # our own refusals, and Unavailable from the budget
        raise
    except UnidentifiedImageError:
        raise _reject(f"the file is not {ACCEPTED}", field) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _reject(
            "the picture has far too many pixels once decoded; send a smaller photo", field
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _reject(f"the picture is damaged or cut short ({exc})", field) from None


def _open(data: bytes, max_pixels: int, field: str) -> Image.Image:
    """The header only: the type sniffed from the bytes and the pixel count checked."""
    if not data:
        raise _reject(f"the file is empty; choose {ACCEPTED}", field)
    image = Image.open(io.BytesIO(data), formats=FORMATS)
    if image.width * image.height > max_pixels:
        image.close()
        raise _reject(
            f"{image.width} x {image.height} pixels is more than the "
            f"{max_pixels:,} allowed; send a smaller photo",
            field,
        )
    return image


def probe_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image"
) -> tuple[int, int]:
    """The checks `read_image` makes before decoding, without decoding: (width, height),
    or InvalidInput. For refusing a bad file before anything expensive starts; a file cut
    short past its header passes here and is refused by the decode."""
    with _refusals(field), _open(data, max_pixels, field) as image:
        return image.size


def read_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    max_bytes: int | None = None,
    budget: DecodeBudget | None = None,
    field: str = "image",
) -> Image.Image:
    """Upload bytes -> upright RGB image, or InvalidInput saying what to do about it.

    `max_side`: the longer side of what comes back, at most (None: the picture's own
    size). `max_bytes`: the most the decoded picture may take (see `decoded_bytes`;
    a JPEG counts at the scale it is decoded to). `budget`: the process's decode budget,
    held while the full-size picture is in memory.
    """
    with _refusals(field):
        image = _open(data, max_pixels, field)
        image.seek(0)  # first frame of a GIF or animated WebP
        sent = image.size
        if max_side is not None:
            _draft(image, max_side)
        size = decoded_bytes(image.mode, image.size)
        if max_bytes is not None and size > max_bytes:
            image.close()
            raise _reject(
                f"{sent[0]} x {sent[1]} pixels of {image.mode}"
                + (f", read at {image.width} x {image.height}," if image.size != sent else "")
                + f" take {size:,} bytes once decoded, more than the {max_bytes:,} allowed; "
                "send a smaller photo",
                field,
            )
        hold: AbstractContextManager[None] = (
            budget.hold(size) if budget is not None else nullcontext()
        )
        small: Image.Image | None = None
        with hold:
            try:
                image.load()
                orientation = image.getexif().get(0x0112, 1)  # read after load: PNG
                small = _shrink(image, max_side)
            finally:
                if small is not image:
                    image.close()  # the full-size pixels go now, not at collection
                if size >= TRIM_AFTER_BYTES:
                    memory.trim()
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return small.transpose(method) if method is not None else small


def to_png(image: Image.Image) -> bytes:
    """Lossless bytes of an image read here: what is passed on to a model."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # speed over size: it stays on loopback
    return out.getvalue()
