"""Image intake shared by every service that takes a photo from a user.

The type is sniffed from the bytes (never trusted from a file name or a header), the
pixel count is read from the header and checked before anything is decoded
(decompression bombs), and the whole image is then decoded so that a truncated file
is refused here rather than inside a model. What comes out is always an upright
8-bit RGB picture: EXIF orientation applied, the first frame of an animation,
grayscale, CMYK and palette converted, transparency flattened onto white (a model
was trained on photos, which have no alpha).
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from services.problems import Problem

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
ACCEPTED = "a JPEG, PNG, WebP or GIF picture"
# Header sniffing cannot see past this many pixels in one frame: Pillow's own guard
# (DecompressionBombError at twice its limit) stays on as a second line.
DEFAULT_MAX_PIXELS = 40_000_000


def _reject(message: str, field: str) -> Problem:
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def _flatten(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparent pixels become white."""
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
        extrema = image.getextrema()  # one band: (min, max)
        lo, hi = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        span = (hi - lo) or 1.0
        image = image.point(lambda v: (v - lo) * 255.0 / span).convert("L")
    return image.convert("RGB")


def read_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image"
) -> Image.Image:
    """Upload bytes -> upright RGB image, or Problem(422) saying what to do about it."""
    if not data:
        raise _reject(f"the file is empty; choose {ACCEPTED}", field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if image.width * image.height > max_pixels:
                raise _reject(
                    f"{image.width} x {image.height} pixels is more than the "
                    f"{max_pixels:,} allowed; send a smaller photo",
                    field,
                )
            image.seek(0)  # first frame of a GIF or animated WebP
            image.load()
            upright = ImageOps.exif_transpose(image)
    except Problem:
        raise
    except UnidentifiedImageError:
        raise _reject(f"the file is not {ACCEPTED}", field) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _reject(
            "the picture has far too many pixels once decoded; send a smaller photo", field
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _reject(f"the picture is damaged or cut short ({exc})", field) from None
    return _flatten(upright if upright is not None else image)


def to_png(image: Image.Image) -> bytes:
    """Lossless bytes of an image read here: what is passed on to a model."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # speed over size: it stays on loopback
    return out.getvalue()
