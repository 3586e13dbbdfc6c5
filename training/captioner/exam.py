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
  that are not are counted, per photo, as errors;
- of all the things named, the share that is present: a captioner that says more can
  name more absent things and still be as often right about what it names;
- how many main subjects some ImageNet class names in its own caption (`has_own_class`:
  a giraffe, a windmill or a cow has none; "ox" is refused for a cow), and how many of
  those the top caption names: the others can only be named by a group's word ("an
  animal", "a building"), so this parts what the classifier gets wrong from what its
  label set cannot say.

`python -m training.captioner.exam --model serving/models/captioner/1 --model ...`
sits the exam with exported versions, as caption-service would call them, and prints
each photo's top caption and marks, then each half's figures per model.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkative_common.cli import command_parser
from training.captioner import offline_photos
from training.captioner.scene_captions import named_things, supported

if TYPE_CHECKING:
    import numpy as np

EXAM_DIR = Path(__file__).parent / "exam_photos"
MODELS = Path(__file__).resolve().parents[2] / "serving" / "models" / "captioner"
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


@cache
def _own_captions() -> tuple[str, ...]:
    from training.captioner import imagenet_captions as ic

    return tuple(c for index in range(ic.NUM_CLASSES) for c in ic.specific_captions(index))


@cache
def has_own_class(accepted: tuple[str, ...]) -> bool:
    """Whether some ImageNet class's own caption (not its group's) names a subject."""
    return any(offline_photos.mentions(c, accepted) for c in _own_captions())


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
        "main_has_own_class": has_own_class(photo.subjects[0].accepted),
        "named": named,
        "absent": absent,
    }
    if len(photo.subjects) >= 2:
        result["names_two"] = all(
            offline_photos.mentions(caption, s.accepted) for s in photo.subjects[:2]
        )
    return result


def summary(marks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per half: main subject named, two subjects named (of those with two), absent things,
    and the share of the things named that are present: the precision of what the captions
    say, which a captioner that names more can keep while its absent count grows; and how
    many main subjects have an ImageNet class of their own, and of those how many are
    named."""
    out: dict[str, Any] = {}
    for half in HALVES:
        rows = [m for m in marks if m["half"] == half]
        two = [m for m in rows if "names_two" in m]
        own = [m for m in rows if m["main_has_own_class"]]
        main = sum(m["names_main"] for m in rows)
        named = sum(len(m["named"]) for m in rows)
        absent = sum(len(m["absent"]) for m in rows)
        out[half] = {
            "photos": len(rows),
            "names_main": main,
            "names_main_share": round(main / max(len(rows), 1), 3),
            "two_subject_photos": len(two),
            "names_two": sum(m["names_two"] for m in two),
            "absent_things": absent,
            "photos_with_absent_things": [m["photo"] for m in rows if m["absent"]],
            "things_named": named,
            # None when nothing is named: the precision of nothing is not 0.
            "named_present_share": round((named - absent) / named, 3) if named else None,
            "main_with_own_class": len(own),
            "names_main_with_own_class": sum(m["names_main"] for m in own),
        }
    return out


# (photo bytes, its detection rows or None) -> the ranked captions.
CaptionFn = Callable[[bytes, "np.ndarray | None"], list[str]]


def sit(
    caption: CaptionFn,
    *,
    detections: bool,
    persons: Callable[[bytes], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Caption every exam photo and mark the top caption (`score`). With `detections`,
    the cascades run on each photo first, as caption-service runs them, and the rows go
    to the captioner; the kinds found are kept with the marks. `persons`, when given,
    adds its rows to the cascades' (`person_detector.merge`)."""
    from talkative_common.detectors import KINDS, Detector

    if persons is not None:
        from training.captioner.person_detector import merge
    detector = Detector() if detections else None
    marks = []
    for photo in photos():
        data = photo.load()
        found: Counter[str] = Counter()
        rows = None
        if detector is not None:
            rows = detector.detect_photo(data)
            if persons is not None:
                rows = merge(rows, persons(data))
            found.update(KINDS[kind - 1] for kind in rows[:, 0].astype(int) if kind)
        ranked = caption(data, rows)
        marks.append({**score(photo, ranked[0]), "captions": ranked, "detections": dict(found)})
    return marks


def exported(version: Path) -> tuple[CaptionFn, bool]:
    """An exported captioner version as caption-service calls it: `caption_scene` with
    the cascades' rows when its card asks for detections, `serving_default` otherwise."""
    import tensorflow as tf

    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    loaded = tf.saved_model.load(str(version))
    beam = int(card["beam_size"])

    def ranked(out: dict[str, Any]) -> list[str]:
        return [c.decode() for c in out["captions"].numpy()[0]]

    if "detections" in card:
        scene = loaded.signatures[card["detections"]["signature"]]

        def caption_scene(data: bytes, rows: np.ndarray | None) -> list[str]:
            assert rows is not None
            return ranked(
                scene(
                    image_bytes=tf.constant([data]),
                    detections=tf.constant(rows[None], tf.float32),
                    beam_size=tf.constant([beam]),
                )
            )

        return caption_scene, True
    plain = loaded.signatures["serving_default"]
    return (lambda data, _rows: ranked(plain(image_bytes=tf.constant([data])))), False


def print_marks(marks: Sequence[dict[str, Any]]) -> None:
    for m in marks:
        flag = "ok" if m["names_main"] else "MISS"
        if "names_two" in m:
            flag += " both" if m["names_two"] else " one of two"
        extra = f" absent: {', '.join(m['absent'])}" if m["absent"] else ""
        print(f"{m['half']:6s} {m['photo']:22s} {m['caption']!r:60s} {flag}{extra}")


def write_card(version: Path, marks: list[dict[str, Any]]) -> bool:
    """Replace the exam in a version's card by these marks; False when it carries none."""
    from datetime import UTC, datetime

    path = version / "assets.extra" / "model_card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    evaluation = card.get("evaluation", {})
    if "exam" not in evaluation:
        return False
    evaluation["exam"] = summary(marks)
    evaluation["exam_photos"] = marks
    evaluation["exam_sat"] = {
        "date": datetime.now(UTC).date().isoformat(),
        "by": "python -m training.captioner.exam --write-card",
        "photos": len(marks),
    }
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> None:
    """Sit the captioner's exam (the design and test halves of the bundled and packaged
    photos) with exported captioner versions, and print each photo's top caption and
    marks, then per half: main subject named, both of two subjects named, things named
    that the photo does not hold, and the share of the things named that it holds."""
    parser = command_parser(main)
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        help="an exported captioner version directory; repeat to compare "
        f"(default: every version under {MODELS.relative_to(MODELS.parents[2])})",
    )
    parser.add_argument("--json", type=Path, help="also write every mark here, per model")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="write the new marks and figures into the card of each version whose card "
        "carries an exam (evaluation.exam), with the date: for when photos join the exam "
        "after the version was trained (the weights and graph are left as they are)",
    )
    parser.add_argument(
        "--person-detector",
        action="store_true",
        help="also sit it, with every version that takes detections, with BlazePose's "
        "person detector's rows added to the cascades' (training/captioner/"
        "person_detector.py; needs mediapipe==0.10.14, which make install installs): what "
        "a people detector would change; no served version runs it",
    )
    args = parser.parse_args(argv)
    versions = args.model or sorted(
        (p for p in MODELS.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    for version in versions:
        if (
            not (version / "saved_model.pb").is_file()
            or not (version / "assets.extra" / "model_card.json").is_file()
        ):
            parser.error(
                f"{version} is not an exported captioner version (saved_model.pb "
                "and assets.extra/model_card.json)"
            )
    if args.person_detector:
        from training.captioner.person_detector import model_path

        try:  # the wheel is checked now; the net is built for the first version that takes it
            model_path()
        except FileNotFoundError as e:
            parser.error(str(e))

    @cache
    def persons() -> Callable[[bytes], np.ndarray]:
        from training.captioner.person_detector import photo_detector

        return photo_detector()

    results: dict[str, Any] = {}
    for version in versions:
        caption, detections = exported(version)
        runs: list[tuple[str, Callable[[bytes], np.ndarray] | None]] = [(str(version), None)]
        if args.person_detector and detections:
            runs.append((f"{version} + person detector", persons()))
        for name, extra in runs:
            print(f"== {name}")
            marks = sit(caption, detections=detections, persons=extra)
            print_marks(marks)
            results[name] = {"marks": marks, "summary": summary(marks)}
            if args.write_card and extra is None:
                write_card(version, marks)
    print()
    for name, result in results.items():
        for half, s in result["summary"].items():
            share = s["named_present_share"]
            print(
                f"{name} {half:6s}: main subject {s['names_main']}/{s['photos']} "
                f"({s['names_main_with_own_class']} of the {s['main_with_own_class']} with "
                "an ImageNet class of their own), "
                f"both of two {s['names_two']}/{s['two_subject_photos']}, "
                f"{s['absent_things']} absent things in "
                f"{len(s['photos_with_absent_things'])} photos, "
                f"{s['things_named'] - s['absent_things']} of {s['things_named']} things named "
                f"present ({'-' if share is None else f'{share:.1%}'})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
