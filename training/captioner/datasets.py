"""Image+caption data sets in the forms real users have, read into one record type.

The captioner trains on whatever a user already has: COCO captions JSON, the
Flickr8k / Flickr30k caption files (the original `<image>#<n>\\t<caption>` token
files, Flickr30k's `results.csv` with `|` separators, Kaggle's Flickr8k
`captions.txt` with `image,caption`), or a plain folder of images with a sidecar
`<stem>.txt` per image or one `captions.tsv` / `captions.txt` (`filename\\tcaption`).

Policies, the same for every format:

- a file that cannot be parsed is a `DatasetError` (a `ValueError`) naming the file
  and the line (for JSON, the entry) that is wrong;
- captions with no word in them (blank, whitespace, punctuation only) are dropped
  and counted; an image left with no caption is dropped and counted;
- an image named by the annotations but absent from the images directory is
  skipped and counted, with one warning that names the first few (real data sets
  have such entries: Flickr8k's token file names `2258277193_586949ec62.jpg.1`);
  `missing="error"` makes it an error instead; if none of the images is there the
  images directory is wrong, which is always an error;
- an image named several times (COCO ids sharing a file, repeated token lines) is
  one image with all its captions, so the train / held-out split, which is by
  image, can never put the same image on both sides.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.captioner.vocab import tokenize

DATASET_KINDS = ("auto", "coco", "flickr", "folder")
# What the encoder decodes (tf.io.decode_image): the folder reader's images.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})
# Caption lists a folder may hold at its root (`filename<TAB>caption` per line).
FOLDER_CAPTION_FILES = ("captions.tsv", "captions.txt")
MissingPolicy = Literal["skip", "error"]

_FLICKR_TOKEN = re.compile(r"^(?P<image>.+)#(?P<n>\d+)$")
# Flickr30k results.csv: `name| n| caption`; one line of the Kaggle copy lacks the second
# `|` (`2199200615.jpg| 4 A dog runs across the grass .`), which this also reads.
_FLICKR30K_CSV = re.compile(r"^(?P<image>[^|]+)\|\s*(?P<n>\d+)\s*(?:\|\s?|\s)(?P<caption>.*)$")
_HEADER_IMAGE = {"image", "filename", "file_name", "image_name", "file"}
_HEADER_CAPTION = {"caption", "captions", "comment", "text"}


class DatasetError(ValueError):
    """A data set file that cannot be read as what it claims to be."""


@dataclass(frozen=True)
class CaptionedImage:
    """One image and its captions; `name` is the image as the annotations name it."""

    path: Path
    captions: tuple[str, ...]
    name: str


@dataclass
class CaptionDataset:
    kind: str  # coco, flickr or folder (never auto)
    source: Path  # the annotations file, or the folder
    images_dir: Path
    items: list[CaptionedImage]
    missing_images: list[str] = field(default_factory=list)
    dropped_captions: int = 0  # captions without a word
    uncaptioned_images: int = 0  # images left without any caption

    @property
    def caption_count(self) -> int:
        return sum(len(item.captions) for item in self.items)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": str(self.source),
            "images_dir": str(self.images_dir),
            "images": len(self.items),
            "captions": self.caption_count,
            "missing_images": len(self.missing_images),
            "dropped_captions": self.dropped_captions,
            "uncaptioned_images": self.uncaptioned_images,
        }


def clean_caption(caption: str) -> str | None:
    """Whitespace collapsed; None for a caption without any word."""
    text = " ".join(caption.split())
    if not any(token[0].isalnum() for token in tokenize(text)):
        return None
    return text


class _Collector:
    """Captions gathered by image name, first appearance first, with the counts."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.captions: dict[str, list[str]] = {}
        self.dropped = 0

    def add(self, name: str, caption: str) -> None:
        key = _normalise_name(name)
        captions = self.captions.setdefault(key, [])
        text = clean_caption(caption)
        if text is None:
            self.dropped += 1
        else:
            captions.append(text)

    def build(
        self, kind: str, images_dir: Path, missing: MissingPolicy, extra_uncaptioned: int = 0
    ) -> CaptionDataset:
        items: list[CaptionedImage] = []
        absent: list[str] = []
        uncaptioned = extra_uncaptioned
        for name, captions in self.captions.items():
            path = images_dir / name
            if not path.is_file():
                absent.append(name)
            elif not captions:
                uncaptioned += 1
            else:
                items.append(CaptionedImage(path, tuple(captions), name))
        if absent:
            _report_missing(self.source, images_dir, absent, len(self.captions), missing)
        if not items:
            raise DatasetError(f"{self.source}: no image with a caption (images in {images_dir})")
        return CaptionDataset(
            kind, self.source, images_dir, items, absent, self.dropped, uncaptioned
        )


def _normalise_name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    return os.path.normpath(name).replace(os.sep, "/") if name else name


def _report_missing(
    source: Path, images_dir: Path, absent: list[str], named: int, missing: MissingPolicy
) -> None:
    first = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
    if len(absent) == named:
        raise DatasetError(
            f"{source}: none of the {named} images it names is in {images_dir} (first: {first}); "
            "is the images directory right?"
        )
    message = f"{source}: {len(absent)} of {named} images are not in {images_dir}: {first}"
    if missing == "error":
        raise DatasetError(message)
    warnings.warn(message + " (skipped)", stacklevel=3)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        # utf-8-sig: files saved by spreadsheet programs start with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e})") from e


def _lines(text: str) -> Iterable[tuple[int, str]]:
    """(1-based line number, line without its end) for every non-blank line."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line.rstrip("\r\n")


# --- COCO ----------------------------------------------------------------------------------


def read_coco(
    annotations: Path, images_dir: Path | None = None, *, missing: MissingPolicy = "skip"
) -> CaptionDataset:
    """COCO captions JSON: `images` [{id, file_name}] and `annotations` [{image_id, caption}].

    JSON has no useful line numbers for entries, so errors name the entry
    (`annotations[12]`) instead.
    """
    text = _read_text(annotations)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{annotations}:{e.lineno}: not valid JSON: {e.msg}") from e
    if not isinstance(data, dict):
        raise DatasetError(f"{annotations}: not a COCO captions file (no top-level object)")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{annotations}: not a COCO captions file (no '{key}' list)")
    files: dict[Any, str] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DatasetError(f"{annotations}: images[{i}]: needs 'id' and 'file_name'")
        if not isinstance(image["file_name"], str) or not image["file_name"].strip():
            raise DatasetError(f"{annotations}: images[{i}]: 'file_name' must be a file name")
        if image["id"] in files:
            raise DatasetError(f"{annotations}: images[{i}]: id {image['id']!r} appears twice")
        files[image["id"]] = image["file_name"]
    collector = _Collector(annotations)
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DatasetError(f"{annotations}: annotations[{i}]: needs 'image_id' and 'caption'")
        if not isinstance(ann["caption"], str):
            raise DatasetError(f"{annotations}: annotations[{i}]: 'caption' must be a string")
        if ann["image_id"] not in files:
            raise DatasetError(
                f"{annotations}: annotations[{i}]: image_id {ann['image_id']!r} is not in 'images'"
            )
        collector.add(files[ann["image_id"]], ann["caption"])
    named = {_normalise_name(f) for f in files.values()}
    unannotated = len(named - collector.captions.keys())
    images_dir = images_dir or _guess_images_dir(annotations, list(collector.captions))
    return collector.build("coco", images_dir, missing, extra_uncaptioned=unannotated)


# --- Flickr --------------------------------------------------------------------------------


def read_flickr(
    captions: Path, images_dir: Path | None = None, *, missing: MissingPolicy = "skip"
) -> CaptionDataset:
    """A Flickr8k / Flickr30k caption file, in any of its three published forms.

    - token file (`Flickr8k.token.txt`, `results_20130124.token`):
      `1000268201_693b08cb0e.jpg#0<TAB>A child in a pink dress ...`;
    - Flickr30k `results.csv`: header `image_name| comment_number| comment`, then
      `1000092795.jpg| 0| Two young guys ...`;
    - Kaggle's Flickr8k `captions.txt`: header `image,caption`, then CSV rows.

    The form is told by the first line.
    """
    text = _read_text(captions)
    first = next((line for _, line in _lines(text)), None)
    if first is None:
        raise DatasetError(f"{captions}: empty file")
    collector = _Collector(captions)
    header = [f.strip().lower() for f in first.split("|")]
    if len(header) >= 2 and header[0] == "image_name":
        _read_flickr30k_csv(captions, text, collector)
    elif first.strip().lower().replace(" ", "") == "image,caption":
        _read_kaggle_csv(captions, text, collector)
    else:
        _read_flickr_tokens(captions, text, collector)
    images_dir = images_dir or _guess_images_dir(captions, list(collector.captions))
    return collector.build("flickr", images_dir, missing)


def _read_flickr_tokens(path: Path, text: str, collector: _Collector) -> None:
    for number, line in _lines(text):
        name, tab, caption = line.partition("\t")
        match = _FLICKR_TOKEN.match(name.strip())
        if not tab or match is None:
            raise DatasetError(
                f"{path}:{number}: expected '<image>#<n><TAB><caption>', got {line[:80]!r}"
            )
        collector.add(match["image"], caption)


def _read_flickr30k_csv(path: Path, text: str, collector: _Collector) -> None:
    lines = iter(_lines(text))
    next(lines)  # the header
    for number, line in lines:
        match = _FLICKR30K_CSV.match(line)
        if match is None or not match["image"].strip():
            raise DatasetError(
                f"{path}:{number}: expected '<image>| <n>| <caption>', got {line[:80]!r}"
            )
        collector.add(match["image"], match["caption"])


def _read_kaggle_csv(path: Path, text: str, collector: _Collector) -> None:
    reader = csv.reader(io.StringIO(text))
    next(reader)  # the header
    for row in reader:
        number = reader.line_num
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not row[0].strip():
            raise DatasetError(f"{path}:{number}: expected '<image>,<caption>', got {row!r}")
        # An unquoted caption with commas in it comes as several fields.
        collector.add(row[0], ",".join(row[1:]))


# --- a folder ------------------------------------------------------------------------------


def read_folder(folder: Path, *, missing: MissingPolicy = "skip") -> CaptionDataset:
    """Images under `folder` (any depth) with their captions, from either or both of:

    - a sidecar text file beside each image, `<stem>.txt`, one caption per line;
    - `captions.tsv` or `captions.txt` at the folder's root, `<file name><TAB><caption>`
      per line, the file name relative to the folder (an optional first line
      `filename<TAB>caption` is a header).

    Images with no caption anywhere are dropped and counted.
    """
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such directory")
    collector = _Collector(folder)
    images = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    lists = [folder / name for name in FOLDER_CAPTION_FILES if (folder / name).is_file()]
    for image in images:
        name = image.relative_to(folder).as_posix()
        collector.captions.setdefault(name, [])
        sidecar = image.with_suffix(".txt")
        if sidecar.is_file() and sidecar not in lists:
            for _, line in _lines(_read_text(sidecar)):
                collector.add(name, line)
    for caption_list in lists:
        _read_caption_list(caption_list, collector)
    if not collector.captions:
        raise DatasetError(
            f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no caption list"
        )
    return collector.build("folder", folder, missing)


def _read_caption_list(path: Path, collector: _Collector) -> None:
    for number, line in _lines(_read_text(path)):
        name, tab, caption = line.partition("\t")
        if number == 1 and tab and _is_header(name, caption):
            continue
        if not tab or not name.strip():
            hint = ""
            if number == 1 and line.strip().lower().replace(" ", "") == "image,caption":
                hint = " (this is Kaggle's Flickr8k captions.txt: read it with kind 'flickr')"
            raise DatasetError(
                f"{path}:{number}: expected '<file name><TAB><caption>', got {line[:80]!r}{hint}"
            )
        collector.add(name, caption)


def _is_header(first: str, second: str) -> bool:
    return first.strip().lower() in _HEADER_IMAGE and second.strip().lower() in _HEADER_CAPTION


def _guess_images_dir(annotations: Path, names: Sequence[str]) -> Path:
    """Beside the annotations, or the one sub-directory of theirs that holds the images.

    Published layouts keep images apart (`Flicker8k_Dataset/`, `flickr30k_images/`,
    `Images/`); without `images_dir` the first of these candidates holding the first
    named image is used, else the annotations' own directory.
    """
    parent = annotations.parent
    if not names:
        return parent
    candidates = [parent, *sorted(p for p in parent.iterdir() if p.is_dir())]
    for candidate in candidates:
        if any((candidate / name).is_file() for name in names[:20]):
            return candidate
    return parent


# --- one entry -----------------------------------------------------------------------------


def detect_kind(path: Path) -> str:
    """folder for a directory, coco for a .json file, flickr for any other file."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    return "coco" if path.suffix.lower() == ".json" else "flickr"


def load_dataset(
    kind: str,
    path: Path,
    images_dir: Path | None = None,
    *,
    missing: MissingPolicy = "skip",
) -> CaptionDataset:
    """Read a data set: `kind` is coco, flickr, folder or auto (told from `path`)."""
    path = Path(path)
    if kind not in DATASET_KINDS:
        raise DatasetError(f"unknown data set kind {kind!r}: one of {', '.join(DATASET_KINDS)}")
    if missing not in ("skip", "error"):
        raise ValueError(f"missing must be 'skip' or 'error', not {missing!r}")
    if kind == "auto":
        kind = detect_kind(path)
    images_dir = Path(images_dir) if images_dir is not None else None
    if images_dir is not None and not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: no such directory")
    if kind == "coco":
        return read_coco(path, images_dir, missing=missing)
    if kind == "flickr":
        return read_flickr(path, images_dir, missing=missing)
    if images_dir is not None and images_dir.resolve() != path.resolve():
        raise DatasetError(f"{path}: a folder data set keeps its images in itself; no images_dir")
    return read_folder(path, missing=missing)


# --- the split -----------------------------------------------------------------------------


def split_dataset(
    items: Sequence[CaptionedImage], *, held_out: float, seed: int
) -> tuple[list[CaptionedImage], list[CaptionedImage]]:
    """(train, held-out) by image, deterministic in (`seed`, image names).

    Images are ranked by sha256(seed, name) and the first round(n * held_out) (at
    least one when held_out > 0) are held out, so an image's side depends only on the
    seed and its name, not on the order of the file; both lists keep the input order.
    """
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), not {held_out}")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError("an image appears twice: merge its captions before splitting")
    count = round(len(items) * held_out)
    if held_out > 0:
        count = max(1, count)
    if count >= len(items):
        raise ValueError(
            f"{len(items)} images cannot give {count} held-out images and any to train on"
        )

    def rank(item: CaptionedImage) -> bytes:
        return hashlib.sha256(f"{seed}\0{item.name}".encode()).digest()

    held = {item.name for item in sorted(items, key=rank)[:count]}
    train = [item for item in items if item.name not in held]
    return train, [item for item in items if item.name in held]
