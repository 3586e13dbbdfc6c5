"""Real photos that ship inside installed wheels, with what a caption must name in each.

The default captioner never trains on these: they are its exam (the test and the
model card both report how many top captions name the main subject). A caption
passes when it contains one of the accepted words.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from talkative_common.cli import command_parser


@dataclass(frozen=True)
class Photo:
    name: str
    subject: str  # what is in it, in words
    accepted: tuple[str, ...]  # words a caption naming the subject contains
    load: Callable[[], np.ndarray]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":
            return np.asarray(data.stereo_motorcycle()[0])
        return np.asarray(getattr(data, name)())

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(name))

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


PERSON = ("person", "people", "man", "woman", "player", "gymnast", "astronaut")

PHOTOS: tuple[Photo, ...] = (
    Photo(
        "astronaut", "an astronaut in a space suit", (*PERSON, "space suit"), _skimage("astronaut")
    ),
    Photo("chelsea", "a tabby cat", ("cat",), _skimage("chelsea")),
    Photo("coffee", "a cup of coffee", ("coffee", "espresso", "cup"), _skimage("coffee")),
    Photo(
        "rocket",
        "a rocket on its launch pad",
        ("rocket", "missile", "space shuttle"),
        _skimage("rocket"),
    ),
    Photo(
        "motorcycle",
        "a motorcycle in a garage",
        ("motorcycle", "moped", "scooter", "motorbike"),
        _skimage("motorcycle"),
    ),
    Photo(
        "camera", "a man filming with a camera on a tripod", (*PERSON, "camera"), _skimage("camera")
    ),
    Photo("horse", "the silhouette of a horse", ("horse",), _skimage("horse")),
    Photo(
        "china",
        "a Chinese temple by a lake",
        ("temple", "palace", "building", "pagoda", "tower", "monastery"),
        _sklearn("china.jpg"),
    ),
    Photo("flower", "a flower with a bee", ("flower", "daisy"), _sklearn("flower.jpg")),
    Photo("grace_hopper", "Grace Hopper in uniform", PERSON, _grace_hopper),
)


def as_bytes(photo: Photo, fmt: str = "PNG") -> bytes:
    array = photo.load()
    if array.dtype == bool:  # the horse is a binary silhouette
        array = np.where(array, 255, 0).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format=fmt)
    return out.getvalue()


def mentions(caption: str, words: Iterable[str]) -> bool:
    """Whether the caption contains one of `words` (whole words, any case)."""
    text = " " + " ".join(caption.lower().replace(".", " ").replace(",", " ").split()) + " "
    return any(f" {w} " in text for w in words)


def names_subject(caption: str, photo: Photo) -> bool:
    return mentions(caption, photo.accepted)


def main(argv: list[str] | None = None) -> int:
    """Write the real photos that ship inside the installed wheels (scikit-image, scikit-learn,
    matplotlib) as JPEG files, to try the captioner and `talkative tell` on."""
    from pathlib import Path

    parser = command_parser(main)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/photos"),
        help="folder to write (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for photo in PHOTOS:
        path = args.out / f"{photo.name}.jpg"
        if not path.exists():
            path.write_bytes(as_bytes(photo, "JPEG"))
        print(f"{path}  ({photo.subject})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
