"""The face cascades' settings: time a photo against faces found, for each copy size and step.

caption-service runs OpenCV's Haar cascades before every scene caption
(talkative_common/detectors.py); they are most of what the scene captioner adds to a
caption's time (issue 20's budget: 3x the whole-image captioner). This compares, in one
run, the served setting (a 320 px copy, pyramid step 1.3) with the others weighed when it
was chosen:

- time a photo: median over --repeats passes of the ten bundled photos
  (training/captioner/offline_photos.py) through `Detector.detect_photo`, as caption-service
  calls it, the default cascades (frontal face and cat face);
- faces counted: the first 100 faces of scikit-image's Labeled Faces in the Wild subset
  (`skimage.data.lfw_subset`, 25 x 25 crops), each enlarged to --face-size px and pasted in
  the middle of a grey 640 x 480 photo; a face counts when a face row scores at least the
  scene's DETECTION_MIN (0.5), the score the scene captioner reads a person from.

With --person-detector, one more row: BlazePose's person detector rebuilt as TensorFlow
ops (training/captioner/person_detector.py), timed the same way against the served
cascades' time in the same run. It runs in no served version; `python -m
training.captioner.exam --person-detector` measures what it would change.

    python bench/detectors.py [--repeats 3] [--face-size 120] [--setting 320:1.3 ...]
                              [--person-detector]
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from talkative_common.detectors import (  # noqa: E402
    DETECTION_MIN,
    FACE,
    MAX_SIDE,
    SCALE_FACTOR,
    Detector,
    check_setting,
)

SETTINGS = ((320, 1.2), (MAX_SIDE, SCALE_FACTOR), (288, 1.2), (256, 1.2))


def setting(text: str) -> tuple[int, float]:
    """SIDE:STEP; argparse turns the ValueError of a bad one into a usage error."""
    side, _, step = text.partition(":")
    parsed = int(side), float(step)
    check_setting(*parsed)
    return parsed


def lfw_photos(size: int) -> list[bytes]:
    """The 100 LFW faces, each enlarged to size px on a grey 640 x 480 photo (JPEG)."""
    from skimage.data import lfw_subset

    out = []
    for face in lfw_subset()[:100]:
        crop = Image.fromarray((face * 255).round().astype(np.uint8)).convert("RGB")
        canvas = Image.new("RGB", (640, 480), (128, 128, 128))
        canvas.paste(crop.resize((size, size), Image.Resampling.BICUBIC), ((640 - size) // 2, 120))
        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=95)
        out.append(buffer.getvalue())
    return out


def bundled_photos() -> list[bytes]:
    from training.captioner import offline_photos

    return [offline_photos.as_bytes(p, "JPEG") for p in offline_photos.PHOTOS]


def time_a_photo(detect: Callable[[bytes], np.ndarray], photos: list[bytes], repeats: int) -> float:
    """Median seconds of `detect` on a bundled photo, over `repeats` passes (after a warm-up)."""
    detect(photos[0])
    times = []
    for _ in range(repeats):
        for data in photos:
            started = time.perf_counter()
            detect(data)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(
    detector: Detector, photos: list[bytes], faces: list[bytes], repeats: int
) -> tuple[float, int]:
    """(median seconds a bundled photo, faces counted of the LFW photos)."""
    seconds = time_a_photo(detector.detect_photo, photos, repeats)
    counted = 0
    for data in faces:
        rows = detector.detect_photo(data)
        counted += bool(((rows[:, 0] == FACE) & (rows[:, 1] >= DETECTION_MIN)).any())
    return seconds, counted


def main(argv: list[str] | None = None) -> None:
    """Time a photo and faces found for each setting of the face cascades (copy size, step)."""
    parser = bench_parser(main)
    parser.add_argument(
        "--setting",
        type=setting,
        action="append",
        help="SIDE:STEP, the copy's longer side in px and the pyramid step; repeat "
        "(default: " + ", ".join(f"{s}:{f}" for s, f in SETTINGS) + ")",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes over the bundled photos (default: 3)"
    )
    parser.add_argument(
        "--face-size", type=int, default=120, help="px of each pasted LFW face (default: 120)"
    )
    parser.add_argument(
        "--person-detector",
        action="store_true",
        help="also time BlazePose's person detector as TensorFlow ops (training/captioner/"
        "person_detector.py; served by no version), as a ratio to the served cascades",
    )
    args = parser.parse_args(argv)
    photos, faces = bundled_photos(), lfw_photos(args.face_size)
    print(
        f"median over {args.repeats} passes of {len(photos)} bundled photos; faces: "
        f"{len(faces)} LFW faces at {args.face_size} px on 640 x 480, counted at score "
        f">= {DETECTION_MIN}; served: {MAX_SIDE} px, step {SCALE_FACTOR}"
    )
    print(f"{'copy':>6s} {'step':>5s} {'time a photo':>13s} {'faces counted':>14s}")
    for side, step in args.setting or SETTINGS:
        seconds, counted = measure(
            Detector(max_side=side, scale_factor=step), photos, faces, args.repeats
        )
        served = "  (served)" if (side, step) == (MAX_SIDE, SCALE_FACTOR) else ""
        print(
            f"{side:>4d}px {step:5.2f} {seconds * 1e3:10.1f} ms {counted:>8d} of {len(faces)}"
            f"{served}"
        )
    if args.person_detector:
        from training.captioner.person_detector import photo_detector

        baseline = time_a_photo(Detector().detect_photo, photos, args.repeats)
        seconds = time_a_photo(photo_detector(), photos, args.repeats)
        print(
            f"person detector (TensorFlow ops, not served): {seconds * 1e3:.1f} ms a photo, "
            f"{seconds / baseline:.2f}x the served cascades ({baseline * 1e3:.1f} ms, this run)"
        )


if __name__ == "__main__":
    main()
