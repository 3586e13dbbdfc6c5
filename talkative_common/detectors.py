"""People and cat faces in a photo: OpenCV's Haar cascades, for the captioner's `caption_scene`.

ImageNet-1k has no class for a person (nor for a cat's face seen close up), so the
captioner's encoder cannot say "a person". OpenCV's pretrained Haar cascades, which ship
inside the `opencv-python-headless` wheel (`cv2.data.haarcascades`), find frontal faces,
profile faces, upper bodies, full bodies and cat faces. A cascade is not a TensorFlow op,
so caption-service runs them and hands the model the detections as one more input:

    detections: float32[16, 6], one row per detection, [kind, score, x0, y0, x1, y1]

`kind` is 1 + the index in KINDS (0 marks an empty row, all zeros), `score` is in [0, 1],
the corners are normalised to the image's width and height (0..1, x0 < x1, y0 < y1). Rows
are sorted by score, best first, and padded with zero rows to MAX_DETECTIONS.

The settings are OpenCV's usual ones: minNeighbors 5 for faces (as in OpenCV's Python
face-detection tutorial; the default is 3), more for the body cascades, which are known to
fire on clutter; a pyramid step of 1.3 (the tutorial's) on a copy at most 320 px across, because the
cascades are the slowest part of a scene caption on a CPU; by default only the frontal-face
and cat-face cascades run (DEFAULT_KINDS). Nothing here was tuned on the captioner's exam
photos. Deterministic: the same image gives the same rows. Pure: no web framework, no
TensorFlow.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from talkative_common.images import read_image

# The model card's `detections.kinds`, in the order of the kind ids 1, 2, 3...
KINDS = ("face", "profile_face", "upper_body", "full_body", "cat_face")
FACE, PROFILE_FACE, UPPER_BODY, FULL_BODY, CAT_FACE = range(1, len(KINDS) + 1)
MAX_DETECTIONS = 16
ROW_SIZE = 6  # kind, score, x0, y0, x1, y1
# The cascades run on a grayscale copy no larger than this on its longer side. The time
# grows with the pixel count, and it is the captioner's budget (issue 20: the scene
# captioner within 3x the whole-image one, cascades included; bench/caption.py): at 320 the
# smallest face found is the 24 px frontal window, a tenth of a 320 x 240 photo's height.
MAX_SIDE = 320
# The pyramid step: 1.3, as in OpenCV's Python face-detection tutorial (its default is 1.1).
# `python bench/detectors.py` on this 2-core machine, idle (the ten bundled photos, median;
# faces: 100 of scikit-image's Labeled Faces in the Wild at 120 px on 640 x 480, counted
# when they score DETECTION_MIN): 320 px and step 1.2, 35 ms and 61 faces; 1.3, 24 ms and
# 53; 288 px and 1.2, 30 ms and 56; 256 px and 1.2, 23 ms and 47 (step 1.1 took twice the
# time of 1.2). The cascades are most of what the scene captioner adds to a caption
# (issue 20's budget: 3x the whole-image captioner, about 27 ms here).
SCALE_FACTOR = 1.3
# The scene captioner counts a face, body or cat-face box from this score on (about 7
# agreeing neighbours beyond the cascade's minimum, see _score); weaker boxes are left out
# of its counts (their best score is still in its vector).
DETECTION_MIN = 0.5
# Same-kind boxes overlapping more than this are one object (the best one stays); a profile
# face overlapping a frontal face more than this is that frontal face seen by the wrong cascade.
IOU_THRESHOLD = 0.3


# The score's squash (see _score): a detection with this many neighbours beyond the
# minimum scores 1 - 1/e (0.63). Ten at OpenCV's default step of 1.1; a coarser step has
# fewer scales overlapping a face, so fewer neighbours (about in proportion to
# 1 / ln(step)), and the scale follows, to keep a score's meaning.
def score_scale(scale_factor: float) -> float:
    return 10.0 * math.log(1.1) / math.log(scale_factor)


def check_setting(max_side: int, scale_factor: float) -> None:
    """ValueError unless the copy holds the smallest cascade window (24 px) and the pyramid
    grows (a step of 1 or less would never end)."""
    if max_side < 24 or not scale_factor > 1.0:
        raise ValueError(f"max_side >= 24 and scale_factor > 1, got {max_side}, {scale_factor}")


@dataclass(frozen=True)
class Cascade:
    kind: int
    filename: str  # in cv2.data.haarcascades
    min_neighbors: int
    # The smallest box, as a fraction of the image's shorter side, measured on the box's
    # shorter side (never below the window the cascade was trained on).
    min_fraction: float


CASCADES = (
    # Faces and cat faces: minNeighbors 5, the value of OpenCV's face-detection tutorials
    # and of most uses of these cascades; a face is at least 1/12 of the shorter side.
    Cascade(FACE, "haarcascade_frontalface_default.xml", 5, 1 / 12),
    Cascade(PROFILE_FACE, "haarcascade_profileface.xml", 5, 1 / 12),
    # The body cascades fire on clutter (railings, furniture, foliage) far more often than
    # the face ones, so they need more agreeing neighbours, and bodies are bigger: an
    # upper body (head and shoulders) at least 1/8 of the shorter side across, a full body
    # at least 1/16 across (1/8 tall: the window is 14 x 28).
    Cascade(UPPER_BODY, "haarcascade_upperbody.xml", 7, 1 / 8),
    Cascade(FULL_BODY, "haarcascade_fullbody.xml", 7, 1 / 16),
    Cascade(CAT_FACE, "haarcascade_frontalcatface.xml", 5, 1 / 12),
)


# The cascades `Detector()` runs: frontal faces (people) and cat faces (two cats). Profile
# faces (run twice, once mirrored) and the body cascades would quadruple the time on a CPU,
# and the body cascades fire on clutter; `Detector(kinds=...)` runs them too.
DEFAULT_KINDS = (FACE, CAT_FACE)


def empty_detections() -> np.ndarray:
    """No detection: MAX_DETECTIONS zero rows."""
    return np.zeros((MAX_DETECTIONS, ROW_SIZE), np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes [x0, y0, x1, y1]."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = float(w * h)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _order(rows: np.ndarray) -> np.ndarray:
    """Best first: score descending; ties by kind, then position, so the order is total."""
    if not len(rows):
        return rows
    keys = (rows[:, 5], rows[:, 4], rows[:, 3], rows[:, 2], rows[:, 0], -rows[:, 1])
    return rows[np.lexsort(keys)]


def suppress(rows: np.ndarray, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Duplicates out of detection rows [kind, score, x0, y0, x1, y1] (zero rows ignored).

    Within a kind, a box overlapping a better one by IoU > threshold is dropped (greedy
    non-maximum suppression); a profile face overlapping a kept frontal face by IoU >
    threshold is dropped too. The rows that stay come back best first.
    """
    rows = np.asarray(rows, np.float32).reshape(-1, ROW_SIZE)
    rows = _order(rows[rows[:, 0] != 0])
    kept: list[np.ndarray] = []
    for row in rows:
        if any(k[0] == row[0] and iou(k[2:], row[2:]) > threshold for k in kept):
            continue
        kept.append(row)
    faces = [k for k in kept if k[0] == FACE]
    kept = [
        k
        for k in kept
        if not (k[0] == PROFILE_FACE and any(iou(f[2:], k[2:]) > threshold for f in faces))
    ]
    return np.array(kept, np.float32).reshape(-1, ROW_SIZE)


def mirror_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Boxes (x, y, w, h) found on a horizontally flipped image, in the unflipped image."""
    boxes = np.asarray(boxes).reshape(-1, 4).copy()
    boxes[:, 0] = width - (boxes[:, 0] + boxes[:, 2])
    return boxes


def to_rows(
    kind: int, boxes: np.ndarray, scores: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Pixel boxes (x, y, w, h) and their scores as detection rows, corners normalised."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    rows = np.zeros((len(boxes), ROW_SIZE), np.float32)
    rows[:, 0] = kind
    rows[:, 1] = scores
    rows[:, 2] = np.clip(boxes[:, 0] / width, 0, 1)
    rows[:, 3] = np.clip(boxes[:, 1] / height, 0, 1)
    rows[:, 4] = np.clip((boxes[:, 0] + boxes[:, 2]) / width, 0, 1)
    rows[:, 5] = np.clip((boxes[:, 1] + boxes[:, 3]) / height, 0, 1)
    return rows


def pad(rows: np.ndarray) -> np.ndarray:
    """The best MAX_DETECTIONS rows, best first, padded with zero rows."""
    out = empty_detections()
    rows = _order(np.asarray(rows, np.float32).reshape(-1, ROW_SIZE))[:MAX_DETECTIONS]
    out[: len(rows)] = rows
    return out


def _score(neighbours: np.ndarray, min_neighbors: int, scale: float) -> np.ndarray:
    """A detection's neighbour count as a score in (0, 1): 1 - exp(-(n - min) / scale).

    The neighbour count (how many overlapping windows, across positions and scales, the
    cascade accepted and OpenCV merged into this box) is the quantity OpenCV itself accepts
    or rejects a detection by (minNeighbors), so a box that barely passed scores near 0 and
    one many windows agree on near 1, and it is on the same footing for every cascade (same
    pyramid step, same window stride). The alternative, detectMultiScale3's level weights,
    is the last stage's raw sum: in units of each cascade's own stage threshold, which the
    Python API does not expose, so not comparable across kinds, while the rows are sorted
    across kinds. Monotone: more neighbours, higher score.
    """
    excess = np.maximum(np.asarray(neighbours, np.float64).reshape(-1) - min_neighbors, 0)
    return (1.0 - np.exp(-excess / scale)).astype(np.float32)


def _gray(image: Image.Image, max_side: int) -> np.ndarray:
    """A grayscale copy, its longer side at most max_side, histogram-equalised (uint8)."""
    import cv2

    gray = image.convert("L")
    longest = max(gray.size)
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BILINEAR)  # antialiased in Pillow
    return np.asarray(cv2.equalizeHist(np.asarray(gray, np.uint8)))


class Detector:
    """The five cascades, loaded once (about 50 ms); `detect` finds what they see in a photo.

    One instance per process. It is safe to call from several threads: OpenCV does not
    document `CascadeClassifier.detectMultiScale` as thread-safe, and it is not, since a
    classifier keeps the image pyramid and integral images of the call in progress in its
    own feature evaluator, so concurrent calls on one classifier would overwrite each
    other's buffers. One lock serialises the cascade runs rather than one classifier set
    per thread (threading.local): each run already spreads over all cores (OpenCV's
    parallel_for_), so parallel runs would gain little, while asyncio.to_thread's pool may
    hold dozens of threads, each of which would load its own five cascades.
    """

    def __init__(
        self,
        directory: Path | None = None,
        kinds: tuple[int, ...] = DEFAULT_KINDS,
        *,
        max_side: int = MAX_SIDE,
        scale_factor: float = SCALE_FACTOR,
    ) -> None:
        """max_side and scale_factor: the served values unless a comparison (bench/detectors.py)
        asks for others; the score's scale follows the step (score_scale)."""
        import cv2
        import cv2.data

        check_setting(max_side, scale_factor)
        root = Path(directory or cv2.data.haarcascades)
        self.kinds = kinds
        self.max_side, self.scale_factor = max_side, scale_factor
        self._score_scale = score_scale(scale_factor)
        self._classifiers: list[tuple[Cascade, Any]] = []
        for cascade in (c for c in CASCADES if c.kind in kinds):
            path = root / cascade.filename
            classifier = cv2.CascadeClassifier(str(path))
            if classifier.empty():
                raise FileNotFoundError(f"cannot load the Haar cascade {path}")
            self._classifiers.append((cascade, classifier))
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> np.ndarray:
        """float32[MAX_DETECTIONS, 6]: [kind, score, x0, y0, x1, y1] rows, best first."""
        gray = _gray(image, self.max_side)
        height, width = gray.shape
        found = []
        with self._lock:
            for cascade, classifier in self._classifiers:
                found.append(self._run(cascade, classifier, gray, width, height))
                if cascade.kind == PROFILE_FACE:
                    # The profile cascade finds faces turned one way only (to the viewer's
                    # left); the mirrored image shows it the faces turned the other way.
                    mirrored = np.ascontiguousarray(gray[:, ::-1])
                    found.append(
                        self._run(cascade, classifier, mirrored, width, height, mirrored=True)
                    )
        return pad(suppress(np.concatenate(found)))

    def detect_photo(self, data: bytes) -> np.ndarray:
        """The rows of an encoded photo, read as caption-service reads an upload
        (`images.read_image`: upright, RGB); InvalidInput for what is no usable photo."""
        return self.detect(read_image(data))

    def _run(
        self,
        cascade: Cascade,
        classifier: Any,
        gray: np.ndarray,
        width: int,
        height: int,
        *,
        mirrored: bool = False,
    ) -> np.ndarray:
        window_w, window_h = classifier.getOriginalWindowSize()
        # Scale the training window up until its shorter side is the minimum size.
        factor = max(1.0, cascade.min_fraction * min(width, height) / min(window_w, window_h))
        min_size = (math.ceil(window_w * factor), math.ceil(window_h * factor))
        if min_size[0] > width or min_size[1] > height:
            return np.zeros((0, ROW_SIZE), np.float32)
        boxes, neighbours = classifier.detectMultiScale2(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=cascade.min_neighbors,
            minSize=min_size,
        )
        if len(boxes) == 0:
            return np.zeros((0, ROW_SIZE), np.float32)
        boxes = np.asarray(boxes).reshape(-1, 4)
        if mirrored:
            boxes = mirror_boxes(boxes, width)
        scores = _score(np.asarray(neighbours), cascade.min_neighbors, self._score_scale)
        return to_rows(cascade.kind, boxes, scores, width, height)
