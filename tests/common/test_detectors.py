"""OpenCV's cascades as caption-service runs them: rows of the `caption_scene` contract.

Real faces come from scikit-image's Labeled Faces in the Wild subset (`lfw_subset`, 25 x 25
crops), pasted onto a plain canvas; none of the captioner's exam photos is used here, and no
threshold was chosen by looking at one. Images with nothing to find (uniform, gradient,
noise) must give no row.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from talkative_common.detectors import (
    CAT_FACE,
    FACE,
    FULL_BODY,
    KINDS,
    MAX_DETECTIONS,
    MAX_SIDE,
    PROFILE_FACE,
    ROW_SIZE,
    SCALE_FACTOR,
    UPPER_BODY,
    Detector,
    iou,
    mirror_boxes,
    pad,
    suppress,
    to_rows,
)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def lfw_face(index: int, size: int = 160) -> Image.Image:
    """Face `index` (0-99 are faces) of scikit-image's LFW subset, enlarged to size x size."""
    from skimage import data

    pixels = (data.lfw_subset()[index] * 255).round().astype(np.uint8)
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC)


def on_canvas(face: Image.Image, at: tuple[int, int], size: tuple[int, int] = (640, 480)):
    canvas = Image.new("L", size, 128)
    canvas.paste(face, at)
    return canvas.convert("RGB")


def check_rows(rows: np.ndarray) -> np.ndarray:
    """The contract's invariants; returns the non-empty rows."""
    assert rows.shape == (MAX_DETECTIONS, ROW_SIZE) and rows.dtype == np.float32
    used = rows[:, 0] != 0
    n = int(used.sum())
    assert used[:n].all() and not used[n:].any(), "empty rows come last"
    assert (rows[n:] == 0).all(), "an empty row is all zeros"
    real = rows[:n]
    assert set(real[:, 0].astype(int)) <= set(range(1, len(KINDS) + 1))
    assert ((real[:, 1] >= 0) & (real[:, 1] <= 1)).all()
    assert ((real[:, 2:] >= 0) & (real[:, 2:] <= 1)).all()
    assert (real[:, 2] < real[:, 4]).all() and (real[:, 3] < real[:, 5]).all()
    assert (np.diff(real[:, 1]) <= 0).all(), "best first"
    return real


def test_kinds_are_the_model_cards() -> None:
    assert KINDS == ("face", "profile_face", "upper_body", "full_body", "cat_face")
    assert (FACE, PROFILE_FACE, UPPER_BODY, FULL_BODY, CAT_FACE) == (1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (640, 480), (128, 128, 128)),
        Image.new("RGB", (200, 900), (255, 255, 255)),
        Image.fromarray(np.linspace(0, 255, 480 * 640 * 3).reshape(480, 640, 3).astype(np.uint8)),
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)),
        Image.new("RGB", (8, 8)),  # smaller than every cascade's window
    ],
    ids=["grey", "white-tall", "gradient", "noise", "tiny"],
)
def test_nothing_to_find_gives_zero_rows(detector: Detector, image: Image.Image) -> None:
    rows = detector.detect(image)
    assert rows.shape == (MAX_DETECTIONS, ROW_SIZE) and rows.dtype == np.float32
    assert not rows.any()


@pytest.mark.parametrize("index", [0, 20, 40, 50, 90])
def test_a_real_face_is_found_where_it_is(detector: Detector, index: int) -> None:
    # A 160 px face at (240, 120) on 640 x 480: corners (0.375, 0.25) - (0.625, 0.583).
    rows = check_rows(detector.detect(on_canvas(lfw_face(index), (240, 120))))
    faces = rows[rows[:, 0] == FACE]
    assert len(faces) == 1, rows
    truth = np.array([240 / 640, 120 / 480, 400 / 640, 280 / 480])
    assert iou(faces[0, 2:], truth) > 0.4, faces
    assert faces[0, 1] > 0


def test_coordinates_are_normalised_to_the_photo_whatever_its_size(detector: Detector) -> None:
    """A 2560 x 1920 photo is searched at MAX_SIDE across; the corners are fractions of either."""
    small = on_canvas(lfw_face(0), (240, 120))
    big = small.resize((2560, 1920), Image.Resampling.BICUBIC)
    a, b = check_rows(detector.detect(small)), check_rows(detector.detect(big))
    fa, fb = a[a[:, 0] == FACE], b[b[:, 0] == FACE]
    assert len(fa) == len(fb) == 1
    assert np.abs(fa[0, 2:] - fb[0, 2:]).max() < 0.02


def test_detection_is_deterministic_and_thread_safe(detector: Detector) -> None:
    images = [on_canvas(lfw_face(i), (60 + 40 * i // 10, 100)) for i in (0, 20, 40, 50)]
    expected = [detector.detect(im) for im in images]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(len(images))}

    def work(i: int) -> None:
        for _ in range(3):
            results[i].append(detector.detect(images[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, runs in results.items():
        for rows in runs:
            np.testing.assert_array_equal(rows, expected[i])


def test_suppression_keeps_the_best_of_overlapping_boxes_of_a_kind() -> None:
    rows = np.array(
        [
            [FACE, 0.5, 0.10, 0.10, 0.30, 0.30],
            [FACE, 0.9, 0.12, 0.12, 0.32, 0.32],  # overlaps the first (IoU 0.68): wins
            [FACE, 0.4, 0.60, 0.60, 0.80, 0.80],  # elsewhere: stays
            [UPPER_BODY, 0.3, 0.10, 0.10, 0.30, 0.30],  # another kind: stays
            [FACE, 0.2, 0.20, 0.20, 0.40, 0.40],  # IoU 0.14 / 0.22 with the kept faces: stays
            [0, 0, 0, 0, 0, 0],  # padding: ignored
        ],
        np.float32,
    )
    kept = suppress(rows)
    assert kept.tolist() == rows[[1, 2, 3, 4]].tolist()


def test_a_profile_face_on_a_frontal_face_is_dropped() -> None:
    rows = np.array(
        [
            [PROFILE_FACE, 0.95, 0.11, 0.10, 0.31, 0.30],  # on the frontal face: dropped
            [FACE, 0.5, 0.10, 0.10, 0.30, 0.30],
            [PROFILE_FACE, 0.6, 0.50, 0.10, 0.70, 0.30],  # alone: stays
        ],
        np.float32,
    )
    assert suppress(rows)[:, 0].tolist() == [PROFILE_FACE, FACE]
    assert suppress(rows)[0, 2] == pytest.approx(0.5)


def test_mirrored_profile_boxes_map_back() -> None:
    # A box at x 10..40 on a 100 px wide flipped image is at x 60..90 on the photo.
    boxes = mirror_boxes(np.array([[10, 5, 30, 20], [0, 0, 100, 50]]), 100)
    assert boxes.tolist() == [[60, 5, 30, 20], [0, 0, 100, 50]]
    # Mirroring twice is the identity.
    np.testing.assert_array_equal(mirror_boxes(boxes, 100), [[10, 5, 30, 20], [0, 0, 100, 50]])


def test_the_mirrored_face_is_found_mirrored(detector: Detector) -> None:
    photo = on_canvas(lfw_face(0), (80, 120))
    flipped = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a, b = check_rows(detector.detect(photo)), check_rows(detector.detect(flipped))
    fa, fb = a[a[:, 0] == FACE], b[b[:, 0] == FACE]
    assert len(fa) == len(fb) == 1
    # x0' = 1 - x1, and the other way round.
    assert fb[0, 2] == pytest.approx(1 - fa[0, 4], abs=0.03)
    assert fb[0, 4] == pytest.approx(1 - fa[0, 2], abs=0.03)


def test_rows_are_normalised_sorted_and_padded() -> None:
    rows = np.concatenate(
        [
            to_rows(FACE, np.array([[64, 48, 64, 48]]), np.array([0.3]), 640, 480),
            to_rows(CAT_FACE, np.array([[600, 400, 80, 120]]), np.array([0.8]), 640, 480),
        ]
    )
    # Boxes are clipped to the photo (the cat face's reaches past its corner).
    assert rows[1, 2:].tolist() == pytest.approx([600 / 640, 400 / 480, 1.0, 1.0])
    assert rows[0, 2:].tolist() == pytest.approx([0.1, 0.1, 0.2, 0.2])
    out = pad(rows)
    check_rows(out)
    assert out[:2, 0].tolist() == [CAT_FACE, FACE]
    # More than MAX_DETECTIONS: the best ones stay.
    many = np.array(
        [[FACE, s, 0.1, 0.1, 0.2, 0.2] for s in np.linspace(0.01, 0.99, 40)], np.float32
    )
    top = check_rows(pad(many))
    assert len(top) == MAX_DETECTIONS and top[0, 1] == pytest.approx(0.99)
    assert top[-1, 1] == pytest.approx(np.sort(many[:, 1])[-MAX_DETECTIONS])


def test_by_default_only_the_face_and_cat_face_cascades_run() -> None:
    """The others cost time the captioner's budget does not have (docs/captioner.md); they
    stay available, and then the profile cascade also reads the mirrored photo."""
    assert Detector().kinds == (FACE, CAT_FACE)
    every = Detector(kinds=(FACE, PROFILE_FACE, UPPER_BODY, FULL_BODY, CAT_FACE))
    rows = check_rows(every.detect(on_canvas(lfw_face(0), (240, 120))))
    assert FACE in rows[:, 0]


def test_a_photos_bytes_are_read_as_the_service_reads_them(detector: Detector) -> None:
    import io

    from talkative_common.errors import InvalidInput

    photo = on_canvas(lfw_face(0), (240, 120)).convert("RGB")
    data = io.BytesIO()
    photo.save(data, format="PNG")
    np.testing.assert_array_equal(detector.detect_photo(data.getvalue()), detector.detect(photo))
    with pytest.raises(InvalidInput):
        detector.detect_photo(b"no photo at all")


def test_the_copy_size_and_the_step_are_options_for_comparisons() -> None:
    """bench/detectors.py weighs other copy sizes and steps against the served ones."""
    served = Detector()
    assert (served.max_side, served.scale_factor) == (MAX_SIDE, SCALE_FACTOR)
    photo = on_canvas(lfw_face(0, 120), (240, 120))  # 60 px on the served 320 px copy
    assert FACE in check_rows(served.detect(photo))[:, 0]
    # A 160 px copy halves it: 30 px of a tight crop, which the 24 px window misses.
    assert not check_rows(Detector(max_side=160).detect(photo)).size
    assert FACE in check_rows(Detector(scale_factor=1.1).detect(photo))[:, 0]
    for bad in ({"max_side": 16}, {"scale_factor": 1.0}, {"scale_factor": float("nan")}):
        with pytest.raises(ValueError):
            Detector(**bad)


@pytest.mark.parametrize("bad", ["16:1.2", "320:1.0", "320:nan", "320", "x:1.2", "320:1,2"])
def test_the_bench_refuses_a_setting_the_detector_would_refuse(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import detectors as bench

    assert bench.setting("288:1.2") == (288, 1.2)
    with pytest.raises(SystemExit) as refused:  # a usage error before any photo is read
        bench.main(["--setting", bad])
    assert refused.value.code == 2
    assert "--setting" in capsys.readouterr().err
