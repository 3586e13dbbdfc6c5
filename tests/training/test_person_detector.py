"""BlazePose's person detector rebuilt as TensorFlow ops, against the TFLite interpreter."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from talkative_common.detectors import FULL_BODY, MAX_DETECTIONS, ROW_SIZE
from tests.training.conftest import committed_captioner
from training.captioner import exam
from training.captioner import person_detector as pd
from training.captioner.encoder import decode_image
from training.captioner.offline_photos import PHOTOS, as_bytes


@pytest.fixture(scope="module")
def detector() -> pd.PersonDetector:
    return pd.PersonDetector()


@pytest.fixture(scope="module")
def tflite() -> tf.lite.Interpreter:
    return pd.interpreter(pd.model_path())


def reference(it: tf.lite.Interpreter, x: np.ndarray) -> list[np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    # float32 sums in another order over 60 layers: 4e-5 of the largest output seen
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1.0)
    assert float(np.abs(got - want).max()) <= 1e-4 * scale


def test_the_rebuilt_net_computes_what_tflite_computes(
    detector: pd.PersonDetector, tflite: tf.lite.Interpreter
) -> None:
    rng = np.random.default_rng(0)
    for x in (
        rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32),
        np.full((1, 224, 224, 3), -1.0, np.float32),
    ):
        ours = detector.net(tf.constant(x))
        for got, want in zip(ours, reference(tflite, x), strict=True):
            assert_close(got.numpy(), want)


def test_a_batch_gives_each_photo_its_own_answer(
    detector: pd.PersonDetector, tflite: tf.lite.Interpreter
) -> None:
    rng = np.random.default_rng(1)
    batch = rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    together = detector.net(tf.constant(batch))
    for i in range(2):
        alone = reference(tflite, batch[i : i + 1])
        for got, want in zip(together, alone, strict=True):
            assert_close(got.numpy()[i : i + 1], want)


def test_the_anchors_are_the_models_outputs(tflite: tf.lite.Interpreter) -> None:
    a = pd.anchors()
    boxes = [int(o["shape"][1]) for o in tflite.get_output_details()]
    assert boxes == [len(a)] * 2
    assert a.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2) == (2254, 2)
    assert ((a > 0) & (a < 1)).all()
    assert tuple(a[0]) == (0.5 / 28, 0.5 / 28) and tuple(a[2]) == (1.5 / 28, 0.5 / 28)
    assert tuple(a[-1]) == (6.5 / 7, 6.5 / 7)


def test_the_score_counts_from_person_min() -> None:
    p = np.array([0.0, 0.45, pd.PERSON_MIN - 1e-4, pd.PERSON_MIN, 0.95, 1.0], np.float32)
    s = pd.row_score(tf.constant(p)).numpy()
    assert s[0] == 0.0 and s[-1] == pytest.approx(1.0) and s[3] == pytest.approx(0.5)
    assert s[2] < 0.5 <= s[3]
    assert (np.diff(s) > 0).all()


def photo(name: str) -> bytes:
    return as_bytes(next(p for p in PHOTOS if p.name == name))


def rows_of(detector: pd.PersonDetector, data: bytes) -> np.ndarray:
    return detector(decode_image(tf.constant(data))).numpy()


def test_rows_have_the_cascades_layout(detector: pd.PersonDetector) -> None:
    for data in (photo("astronaut"), photo("chelsea")):
        rows = rows_of(detector, data)
        assert rows.shape == (pd.MAX_PERSONS, ROW_SIZE)
        used = rows[rows[:, 0] > 0]
        assert (used[:, 0] == FULL_BODY).all()
        assert (np.diff(used[:, 1]) <= 0).all()  # best first
        assert ((used[:, 2:] >= 0) & (used[:, 2:] <= 1)).all()
        assert (used[:, 2] <= used[:, 4]).all() and (used[:, 3] <= used[:, 5]).all()
        assert (rows[len(used) :] == 0).all()


def test_a_rows_box_is_the_body_the_face_belongs_to(detector: pd.PersonDetector) -> None:
    # scikit-image's astronaut, square: the best detection's body box (from the hips'
    # keypoint and the body's reach) holds its face box and is much larger.
    square = tf.image.resize(decode_image(tf.constant(photo("astronaut"))), [224, 224])
    faces, bodies, prob = (t[0].numpy() for t in detector.probabilities(square[None] / 127.5 - 1))
    best = int(prob.argmax())
    face, body = faces[best], bodies[best]
    assert prob[best] > 0.5
    assert body[0] <= face[0] and body[1] <= face[1] and face[2] <= body[2], (face, body)
    assert body[3] - body[1] > 2 * (face[3] - face[1]), (face, body)
    rows = rows_of(detector, photo("astronaut"))
    np.testing.assert_allclose(rows[0, 2:], np.clip(body, 0, 1), atol=0.02)


def test_a_strip_or_a_single_pixel_is_letterboxed_not_refused(
    detector: pd.PersonDetector,
) -> None:
    # 3 x 1000 px scales to under 1 px across: it is kept as 1 px, not a 0 px resize error.
    for shape in ((3, 1000, 3), (1000, 3, 3), (1, 1, 3)):
        rows = detector(tf.fill(shape, tf.constant(128, tf.uint8))).numpy()
        assert rows.shape == (pd.MAX_PERSONS, ROW_SIZE)
        assert ((rows[:, 2:] >= 0) & (rows[:, 2:] <= 1)).all()


def test_nothing_is_found_in_blank_photos(detector: pd.PersonDetector) -> None:
    for colour in ((0, 0, 0), (255, 255, 255), (90, 140, 60)):
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), colour).save(buffer, "PNG")
        rows = rows_of(detector, buffer.getvalue())
        assert (rows[:, 1] < 0.5).all(), rows


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_boxes_are_given_in_the_photos_own_coordinates(detector: pd.PersonDetector) -> None:
    # A wide photo (the astronaut's top half, 512 x 256) is letterboxed with black bands;
    # the same photo with those bands drawn in (512 x 512) gives the network the same
    # square, so the same people, whose boxes must differ only by the bands (a body box
    # reaching past the wide photo is cut at its edge, where the bands begin in the other).
    top = Image.open(io.BytesIO(photo("astronaut"))).convert("RGB").crop((0, 0, 512, 256))
    square = Image.new("RGB", (512, 512))
    square.paste(top, (0, 128))
    wide, tall = rows_of(detector, png(top)), rows_of(detector, png(square))
    assert wide[0, 0] == FULL_BODY, wide  # a candidate at least
    # Resampled alike, not bit for bit.
    np.testing.assert_allclose(tall[:, :2], wide[:, :2], atol=0.01)
    found = wide[:, 0] > 0
    expected = wide[found, 2:].copy()
    expected[:, [1, 3]] = (expected[:, [1, 3]] * 256 + 128) / 512
    seen = tall[found, 2:].copy()
    seen[:, [1, 3]] = np.clip(seen[:, [1, 3]], 0.25, 0.75)
    np.testing.assert_allclose(seen, expected, atol=5e-3)


def test_merge_keeps_the_best_rows_first() -> None:
    cascades = np.zeros((MAX_DETECTIONS, ROW_SIZE), np.float32)
    cascades[:10] = [[1, 0.6, 0, 0, 0.1, 0.1]] * 10
    persons = np.zeros((pd.MAX_PERSONS, ROW_SIZE), np.float32)
    persons[:8] = [[FULL_BODY, 0.9 - i / 100, 0, 0, 1, 1] for i in range(8)]
    merged = pd.merge(cascades, persons)
    assert merged.shape == (MAX_DETECTIONS, ROW_SIZE)
    assert (merged[:8, 0] == FULL_BODY).all() and (merged[8:, 0] == 1).all()
    assert (np.diff(merged[:, 1]) <= 0).all()
    empty = pd.merge(np.zeros_like(cascades), np.zeros_like(persons))
    assert (empty == 0).all()


def test_an_op_it_does_not_know_is_refused(tmp_path: Path) -> None:
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def squash(x: tf.Tensor) -> tf.Tensor:
        return tf.tanh(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [squash.get_concrete_function()], squash
    )
    path = tmp_path / "tanh.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ValueError, match="TANH"):
        pd.TfliteNet(path)


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pd.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(FileNotFoundError, match=r"--no-deps mediapipe==0\.10\.14"):
        pd.model_path()


def test_a_later_wheel_without_the_file_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # mediapipe 0.10.15 and later: the package is there, the .tflite file is not.
    later = SimpleNamespace(submodule_search_locations=[str(tmp_path / "mediapipe")])
    monkeypatch.setattr(pd.importlib.util, "find_spec", lambda _name: later)
    with pytest.raises(FileNotFoundError, match=r"after 0\.10\.14 do not ship it"):
        pd.model_path()
    # The exam command says it as a usage error, before it sits anything.
    v1 = committed_captioner(1)["path"]
    with pytest.raises(SystemExit) as refused:
        exam.main(["--model", str(v1), "--person-detector"])
    assert refused.value.code == 2
    assert "do not ship it" in capsys.readouterr().err


def test_the_exam_adds_the_detectors_rows_to_the_cascades() -> None:
    person = np.zeros((pd.MAX_PERSONS, ROW_SIZE), np.float32)
    person[0] = [FULL_BODY, 0.75, 0.2, 0.1, 0.6, 0.9]
    seen: list[np.ndarray] = []

    def caption(_data: bytes, rows: np.ndarray | None) -> list[str]:
        assert rows is not None
        seen.append(rows)
        return ["a person."]

    marks = exam.sit(caption, detections=True, persons=lambda _data: person)
    assert len(seen) == len(marks) == len(exam.photos())
    for rows, m in zip(seen, marks, strict=True):
        assert rows.shape == (MAX_DETECTIONS, ROW_SIZE)
        assert any((row == person[0]).all() for row in rows)
        assert m["detections"]["full_body"] == 1


def test_the_exam_command_runs_the_detector_only_with_versions_that_take_detections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never() -> None:
        raise AssertionError("the detector was built for a version that takes no detections")

    monkeypatch.setattr(pd, "photo_detector", never)
    v1 = committed_captioner(1)["path"]
    exam.main(["--model", str(v1), "--person-detector", "--json", str(tmp_path / "m.json")])
    assert list(json.loads((tmp_path / "m.json").read_text())) == [str(v1)]
    assert "+ person detector" not in capsys.readouterr().out


def test_the_bench_times_the_detector_against_the_cascades(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import detectors as bench

    bench.main(["--repeats", "1", "--setting", "320:1.3", "--person-detector"])
    printed = capsys.readouterr().out
    assert re.search(
        r"person detector \(TensorFlow ops, not served\): [\d.]+ ms a photo, "
        r"[\d.]+x the served cascades \([\d.]+ ms, this run\)",
        printed,
    ), printed
