"""A people detector that exists offline: BlazePose's person detector, as TensorFlow ops.

ImageNet has no class for a person, and OpenCV's cascades miss people who look away,
are small or wear helmets (docs/captioner.md). The `mediapipe` wheel, up to 0.10.14,
ships the detector of MediaPipe Pose (`modules/pose_detection/pose_detection.tflite`,
under the wheel's Apache 2.0 licence): an SSD over 2,254 anchors on a 224 x 224
letterboxed photo in [-1, 1], one class, a box and four keypoints per anchor.
Later wheels do not ship the file, so this one is pinned (`make install`
installs it without its requirements: only the .tflite file is read).

`TfliteNet` rebuilds the float graph of such a file as TensorFlow ops (its weights
read from the TFLite interpreter after one run, so sparse and float16 weights come
out dense float32), so the detector could run inside an exported SavedModel under TF
Serving, which has no TFLite runtime; `tests/training/test_person_detector.py` checks
it against the interpreter. `PersonDetector` adds the letterbox, the anchors and the
box decoding of MediaPipe's graph (`pose_detection_cpu.pbtxt`: SsdAnchorsCalculator
and TensorsToDetectionsCalculator options), and gives rows in the layout of
`talkative_common.detectors` (kind `full_body`), so the scene graph counts them as
people. Detections are told apart by their face boxes, as MediaPipe's are; a row's box is
the body's, from the first two keypoints (the hips' centre and a point at the body's
reach), as MediaPipe's AlignmentPointsRectsCalculator makes its region of interest:
a square around the hips, twice their distance wide (without the margin its landmark
model is cropped with). The scene reads it against the main subject's box.

`python -m training.captioner.exam --person-detector` sits the exam with these rows
added to the cascades' (docs/captioner.md says what it gave, and why no served version
runs it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

from talkative_common.detectors import FULL_BODY, pad

MEDIAPIPE_VERSION = "0.10.14"  # the last wheel with the .tflite files inside
MODEL_IN_WHEEL = ("modules", "pose_detection", "pose_detection.tflite")
INPUT_SIZE = 224
# SsdAnchorsCalculator in MediaPipe's pose_detection_cpu.pbtxt: five layers, two anchors
# a cell (aspect ratio 1 and the interpolated scale), fixed size; layers of one stride
# share a grid: 28 x 28 x 2 + 14 x 14 x 2 + 7 x 7 x 6 = 2,254 anchors.
STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2
# A person from this probability on. On the exam's design half, candidates from 0.5 boxed
# animals' faces and a hammer (up to 0.78) while the people scored 0.92 and 0.96.
PERSON_MIN = 0.9
# MediaPipe's min_suppression_threshold; its NMS is weighted (boxes averaged), this one
# keeps the best box, which counts alike.
NMS_IOU = 0.3
MAX_PERSONS = 8
# Below this, not even a row (MediaPipe's graph keeps 0.2 and up): 16 rows must hold the
# cascades' boxes too.
_CANDIDATE_MIN = 0.5

_ACTIVATIONS = {0: tf.identity, 1: tf.nn.relu, 3: tf.nn.relu6}  # TFLite's NONE, RELU, RELU6
_PADDING = {0: "SAME", 1: "VALID"}
_WEIGHT_OPS = ("DEQUANTIZE", "DENSIFY")  # run once by the interpreter, read as weights


def model_path() -> Path:
    """The detector's .tflite file inside the installed mediapipe wheel."""
    spec = importlib.util.find_spec("mediapipe")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"mediapipe is not installed: pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}"
            " (make install does)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_IN_WHEEL)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: mediapipe wheels after {MEDIAPIPE_VERSION} do not ship it; "
            f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}"
        )
    return path


def interpreter(path: Path) -> tf.lite.Interpreter:
    """The reference: TFLite's own kernels, every tensor kept (no XNNPACK delegate, whose
    tensors cannot be read back). TensorFlow's own interpreter, which it deprecates for the
    ai-edge-litert wheel but still ships in 2.21, so nothing else is installed for it."""
    it = tf.lite.Interpreter(
        model_path=str(path),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    return it


class TfliteNet(tf.Module):
    """A float TFLite model's single subgraph as TensorFlow ops (the ops MediaPipe's
    detectors use; any other is refused when the net is built)."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="tflite_net")
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(path))
        graph = model.subgraphs[0]
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        ops = []
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
            if name not in _WEIGHT_OPS:
                out = int(op.outputs[0])
                shape = [int(d) for d in graph.tensors[out].shape]
                ops.append((name, [int(i) for i in op.inputs], out, op.builtinOptions, shape))
        unknown = {name for name, *_ in ops} - set(_OPS)
        if unknown:
            raise ValueError(f"{path.name}: ops not supported: {sorted(unknown)}")
        self.input = int(graph.inputs[0])
        self.outputs = [int(i) for i in graph.outputs]
        input_shape = [int(d) for d in graph.tensors[self.input].shape]
        # Every tensor no kept op produces is a weight: read it after one run.
        it = interpreter(path)
        it.set_tensor(it.get_input_details()[0]["index"], np.zeros(input_shape, np.float32))
        it.invoke()
        produced = {op[2] for op in ops} | {self.input}
        weights = {i for op in ops for i in op[1] if i >= 0 and i not in produced}
        self.weights = {str(i): tf.constant(it.get_tensor(i)) for i in sorted(weights)}
        self.ops = ops

    def __call__(self, x: tf.Tensor) -> list[tf.Tensor]:
        values: dict[int, tf.Tensor] = {self.input: x}

        def get(i: int) -> tf.Tensor:
            return values[i] if i in values else self.weights[str(i)]

        for name, ins, out, options, shape in self.ops:
            values[out] = _OPS[name]([get(i) for i in ins], options, shape)
        return [values[i] for i in self.outputs]


# Each op: (its inputs, its builtin options, its output's shape) -> its output.
def _conv(args: list[tf.Tensor], o: Any, _shape: list[int]) -> tf.Tensor:
    kernel = tf.transpose(args[1], (1, 2, 3, 0))  # TFLite [O, H, W, I] -> [H, W, I, O]
    y = tf.nn.conv2d(args[0], kernel, (1, o.strideH, o.strideW, 1), _PADDING[o.padding])
    return _ACTIVATIONS[o.fusedActivationFunction](y + args[2])


def _depthwise(args: list[tf.Tensor], o: Any, _shape: list[int]) -> tf.Tensor:
    if o.depthMultiplier != 1:
        raise ValueError("depthwise convolutions with a depth multiplier are not supported")
    kernel = tf.transpose(args[1], (1, 2, 3, 0))  # [1, H, W, C] -> [H, W, C, 1]
    y = tf.nn.depthwise_conv2d(args[0], kernel, (1, o.strideH, o.strideW, 1), _PADDING[o.padding])
    return _ACTIVATIONS[o.fusedActivationFunction](y + args[2])


def _resize(args: list[tf.Tensor], o: Any, _shape: list[int]) -> tf.Tensor:
    return tf.raw_ops.ResizeBilinear(
        images=args[0],
        size=args[1],
        align_corners=o.alignCorners,
        half_pixel_centers=o.halfPixelCenters,
    )


_OPS: dict[str, Any] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "ADD": lambda a, o, _shape: _ACTIVATIONS[o.fusedActivationFunction](a[0] + a[1]),
    "PAD": lambda a, _o, _shape: tf.pad(a[0], a[1]),
    "DEPTH_TO_SPACE": lambda a, o, _shape: tf.nn.depth_to_space(a[0], o.blockSize),
    "RESIZE_BILINEAR": _resize,
    "CONCATENATION": lambda a, o, _shape: _ACTIVATIONS[o.fusedActivationFunction](
        tf.concat(a, o.axis)
    ),
    "RESHAPE": lambda a, _o, shape: tf.reshape(a[0], [-1, *shape[1:]]),  # any batch
}


def anchors() -> np.ndarray:
    """float32 [2254, 2]: the anchors' centres (x, y) in [0, 1], in the model's output order."""
    centres: list[tuple[float, float]] = []
    i = 0
    while i < len(STRIDES):
        stride, per_cell = STRIDES[i], 0
        while i < len(STRIDES) and STRIDES[i] == stride:  # layers of one stride share a grid
            per_cell += ANCHORS_PER_LAYER
            i += 1
        cells = -(-INPUT_SIZE // stride)
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, np.float32)


def row_score(probability: tf.Tensor) -> tf.Tensor:
    """The detector's probability on the cascades' scale, where DETECTION_MIN (0.5) counts:
    PERSON_MIN becomes 0.5, linearly on each side."""
    over = tf.maximum(probability - PERSON_MIN, 0.0)
    return 0.5 * (probability - over) / PERSON_MIN + 0.5 * over / (1.0 - PERSON_MIN)


class PersonDetector(tf.Module):
    """A decoded photo -> rows of people ([MAX_PERSONS, 6]: kind full_body, score, box
    corners normalised to the photo), best first, zero rows after."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(name="person_detector")
        self.net = TfliteNet(path or model_path())
        self.anchors = tf.constant(anchors())

    def probabilities(self, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[B, 224, 224, 3] in [-1, 1] -> (face boxes, body boxes [B, 2254, 4] as x0, y0,
        x1, y1 in the letterboxed square, probabilities [B, 2254])."""
        regression, logits = self.net(batch)
        # TensorsToDetectionsCalculator: x, y, w, h in pixels of the input, around the anchor,
        # then the keypoints' x, y, also around it.
        centre = regression[..., :2] / INPUT_SIZE + self.anchors
        half = regression[..., 2:4] / INPUT_SIZE / 2.0
        faces = tf.concat([centre - half, centre + half], axis=-1)
        hips = regression[..., 4:6] / INPUT_SIZE + self.anchors
        reach = regression[..., 6:8] / INPUT_SIZE + self.anchors
        radius = tf.norm(reach - hips, axis=-1, keepdims=True)
        bodies = tf.concat([hips - radius, hips + radius], axis=-1)
        return faces, bodies, tf.sigmoid(tf.clip_by_value(logits[..., 0], -100.0, 100.0))

    def __call__(self, image: tf.Tensor) -> tf.Tensor:
        """image [H, W, 3] uint8 -> rows [MAX_PERSONS, 6]."""
        shape = tf.cast(tf.shape(image)[:2], tf.float32)  # h, w
        scale = INPUT_SIZE / tf.reduce_max(shape)
        # Size floored but never 0 px, padding from the unfloored size. Not resize_with_pad:
        # its size can come out a pixel short of the square (h / (h / 224) in float32), which
        # the boxes would not know of, and a strip under 1/224 as wide as long is 0 px there.
        inner = tf.maximum(tf.floor(shape * scale), 1.0)
        offset = tf.floor((INPUT_SIZE - shape * scale) / 2.0)
        resized = tf.image.resize(tf.cast(image, tf.float32), tf.cast(inner, tf.int32))
        top, left = tf.unstack(tf.cast(offset, tf.int32))
        square = tf.image.pad_to_bounding_box(resized, top, left, INPUT_SIZE, INPUT_SIZE)
        faces, bodies, prob = self.probabilities(square[None] / 127.5 - 1.0)  # black is -1
        faces, bodies, prob = faces[0], bodies[0], prob[0]
        keep = tf.image.non_max_suppression(
            tf.gather(faces, [1, 0, 3, 2], axis=-1),
            prob,
            MAX_PERSONS,
            iou_threshold=NMS_IOU,
            score_threshold=_CANDIDATE_MIN,
        )
        # Back to the photo: out of the square, then normalised by the photo's size.
        origin = tf.tile(offset[::-1], [2]) / INPUT_SIZE
        extent = tf.tile(inner[::-1], [2]) / INPUT_SIZE
        kept = tf.clip_by_value((tf.gather(bodies, keep) - origin) / extent, 0.0, 1.0)
        score = row_score(tf.gather(prob, keep))
        kinds = tf.fill(tf.shape(score), float(FULL_BODY))
        rows = tf.concat([kinds[:, None], score[:, None], kept], axis=-1)
        return tf.pad(rows, [[0, MAX_PERSONS - tf.shape(rows)[0]], [0, 0]])


def photo_detector(path: Path | None = None) -> Callable[[bytes], np.ndarray]:
    """A photo's bytes -> its rows, the photo decoded as the captioner's graph decodes it."""
    from training.captioner.encoder import decode_image

    detector = PersonDetector(path)
    run = tf.function(lambda data: detector(decode_image(data)))
    return lambda data: run(tf.constant(data)).numpy()


def merge(cascade_rows: np.ndarray, person_rows: np.ndarray) -> np.ndarray:
    """The cascades' rows and the detector's, best first, as many as the scene's
    `detections` input holds ([16, 6]; `detectors.pad`)."""
    rows = np.concatenate([cascade_rows, person_rows])
    return pad(rows[rows[:, 0] > 0])
