"""The captioner's exam: real photos it never trained on, each with what a caption may name.

Two sources: the ten photos that ship inside scikit-image, scikit-learn and
matplotlib (`offline_photos.py`), and the photos taken from Debian and PyPI packages
into `exam_photos/` (provenance and licences in `exam_photos/LICENCES.md`). OpenCV's
own sample images are left out on purpose: they are kept for an outside check.

Every photo is in one of two halves, fixed by a hash of its name (`half`), not
chosen: the **design** half may be looked at while writing the caption table and
the scene rules; the **test** half is only scored. Each photo lists its subjects,
main first, with the words a caption naming each may use, and `present`: every
word a caption could truthfully use about it. The scores (`score`):

- the top caption names the main subject;
- for photos with two subjects, it names both;
- every thing the caption names (`scene_captions.named_things`) is present; those
  that are not are counted, per photo, as errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from training.captioner import offline_photos
from training.captioner.scene_captions import named_things, supported

EXAM_DIR = Path(__file__).parent / "exam_photos"
HALVES = ("design", "test")


@dataclass(frozen=True)
class Subject:
    what: str
    accepted: tuple[str, ...]


@dataclass(frozen=True)
class ExamPhoto:
    name: str
    subjects: tuple[Subject, ...]  # main first
    present: tuple[str, ...]
    load: Callable[[], bytes] = field(repr=False, compare=False)
    source: str = ""

    @property
    def half(self) -> str:
        return half_of(self.name)


def half_of(name: str) -> str:
    """design or test, from the first byte of the SHA-256 of the photo's name."""
    return HALVES[hashlib.sha256(name.encode()).digest()[0] % 2]


_PERSON = ("person", "people", "man", "woman")
# What each bundled photo holds (offline_photos.PHOTOS gives the main subject's words).
_BUNDLED: dict[str, tuple[tuple[Subject, ...], tuple[str, ...]]] = {
    "astronaut": (
        (Subject("an astronaut", (*_PERSON, "astronaut", "space suit")),),
        (*_PERSON, "astronaut", "space suit", "suit", "flag", "uniform"),
    ),
    "chelsea": ((Subject("a tabby cat", ("cat",)),), ("cat", "tabby cat", "tiger cat")),
    "coffee": (
        (Subject("a cup of coffee", ("coffee", "espresso", "cup")),),
        ("coffee", "espresso", "cup", "saucer", "spoon", "table", "drink"),
    ),
    "rocket": (
        (Subject("a rocket", ("rocket", "missile", "space shuttle")),),
        ("rocket", "missile", "space shuttle", "launch pad", "tower", "sky"),
    ),
    "motorcycle": (
        (Subject("a motorcycle", ("motorcycle", "moped", "scooter", "motorbike")),),
        ("motorcycle", "moped", "scooter", "motorbike", "garage", "room", "wall"),
    ),
    "camera": (
        (
            Subject("a man", (*_PERSON, "photographer")),
            Subject("a camera on a tripod", ("camera", "tripod")),
        ),
        (*_PERSON, "photographer", "camera", "tripod", "grass", "field", "coat", "building"),
    ),
    "horse": ((Subject("a horse", ("horse",)),), ("horse", "animal")),
    "china": (
        (
            Subject(
                "a temple",
                ("temple", "palace", "building", "pagoda", "tower", "monastery", "bell tower"),
            ),
        ),
        (
            *("temple", "palace", "building", "pagoda", "tower", "monastery", "bell tower"),
            *("lake", "lakeshore", "lake shore", "water", "tree", "trees", "sky", "roof"),
        ),
    ),
    "flower": (
        (Subject("a flower", ("flower", "daisy")), Subject("a bee", ("bee", "insect", "fly"))),
        ("flower", "daisy", "bee", "insect", "fly", "petals", "leaves"),
    ),
    "grace_hopper": (
        (Subject("Grace Hopper", _PERSON),),
        (*_PERSON, "uniform", "military uniform"),
    ),
}


def _bundled() -> list[ExamPhoto]:
    out = []
    for photo in offline_photos.PHOTOS:
        subjects, present = _BUNDLED[photo.name]

        def load(p: offline_photos.Photo = photo) -> bytes:
            return offline_photos.as_bytes(p, "JPEG")

        out.append(ExamPhoto(photo.name, subjects, present, load, "bundled"))
    return out


def _packaged(directory: Path) -> list[ExamPhoto]:
    index = directory / "photos.json"
    if not index.exists():
        return []
    out = []
    for entry in json.loads(index.read_text(encoding="utf-8")):
        subjects = sorted(entry["subjects"], key=lambda s: not s.get("main", False))
        path = directory / entry["file"]
        source = entry.get("source", {})
        out.append(
            ExamPhoto(
                entry["name"],
                tuple(
                    Subject(s["what"], tuple(a.lower() for a in s["accepted"])) for s in subjects
                ),
                tuple(w.lower() for w in entry["present"]),
                path.read_bytes,
                f"{source.get('kind', '?')}:{source.get('package', '?')}",
            )
        )
    return out


@cache
def photos(directory: Path = EXAM_DIR) -> tuple[ExamPhoto, ...]:
    return tuple(_bundled() + _packaged(directory))


def score(photo: ExamPhoto, caption: str) -> dict[str, Any]:
    """One photo's marks for its top caption."""
    named = named_things(caption)
    absent = [item for item in named if not supported(item, photo.present)]
    result: dict[str, Any] = {
        "photo": photo.name,
        "half": photo.half,
        "source": photo.source,
        "caption": caption,
        "subjects": [s.what for s in photo.subjects],
        "names_main": offline_photos.mentions(caption, photo.subjects[0].accepted),
        "named": named,
        "absent": absent,
    }
    if len(photo.subjects) >= 2:
        result["names_two"] = all(
            offline_photos.mentions(caption, s.accepted) for s in photo.subjects[:2]
        )
    return result


def summary(marks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per half: main subject named, two subjects named (of those with two), absent things."""
    out: dict[str, Any] = {}
    for half in HALVES:
        rows = [m for m in marks if m["half"] == half]
        two = [m for m in rows if "names_two" in m]
        out[half] = {
            "photos": len(rows),
            "names_main": sum(m["names_main"] for m in rows),
            "names_main_share": round(sum(m["names_main"] for m in rows) / max(len(rows), 1), 3),
            "two_subject_photos": len(two),
            "names_two": sum(m["names_two"] for m in two),
            "absent_things": sum(len(m["absent"]) for m in rows),
            "photos_with_absent_things": [m["photo"] for m in rows if m["absent"]],
        }
    return out
