"""Encoder features of a data set's images, computed once and cached by image content.

Running EfficientNet-Lite0 over every image is the slow part of a captioner run on a
CPU (COCO's 123k images take hours); the decoder itself trains on the features. So
features are kept in one `.npz` keyed by the sha256 of each image file's bytes, per
feature kind and per encoder (a fingerprint of its weights): a second run, a new
split, a copy of the data set in another format or another folder computes nothing,
and an edited image is recomputed because its bytes changed. Progress is saved every
few batches, so an interrupted run keeps what it encoded.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from training.captioner.datasets import DatasetError
from training.captioner.decoder import FEATURE_KINDS, encoder_features
from training.captioner.encoder import images_from_bytes

DEFAULT_BATCH_SIZE = 32
SAVE_EVERY_BATCHES = 50


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encoder_fingerprint(encoder: keras.Model) -> str:
    """A short hash of the encoder's weights: features from other weights are other features."""
    digest = hashlib.sha256()
    for weights in encoder.get_weights():
        digest.update(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FeatureStats:
    images: int  # paths asked for
    unique: int  # distinct contents among them
    cached: int  # distinct contents found in the cache
    computed: int  # distinct contents run through the encoder

    def to_dict(self) -> dict[str, int]:
        return {
            "images": self.images,
            "unique": self.unique,
            "cached": self.cached,
            "computed": self.computed,
        }


class FeatureCache:
    """sha256 -> feature vector, per section `<kind>.<encoder fingerprint>`, in one `.npz`.

    Each section is two arrays, `<section>.keys` (hex digests) and `<section>.features`
    (float32 [N, F]). Saving writes a temporary file and renames it, so a crash leaves
    the previous cache whole.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.sections: dict[str, dict[str, np.ndarray]] = {}
        if path is not None and path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    names = {n.rsplit(".", 1)[0] for n in data.files}
                    for section in names:
                        keys = data[f"{section}.keys"]
                        features = data[f"{section}.features"]
                        self.sections[section] = dict(zip(keys.tolist(), features, strict=True))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
                raise DatasetError(
                    f"{path}: not a feature cache ({e}); delete it to start a new one"
                ) from e

    def section(self, kind: str, fingerprint: str) -> dict[str, np.ndarray]:
        return self.sections.setdefault(f"{kind}.{fingerprint}", {})

    def save(self) -> None:
        if self.path is None:
            return
        arrays: dict[str, np.ndarray] = {}
        for name, table in self.sections.items():
            if not table:
                continue
            arrays[f"{name}.keys"] = np.array(list(table), dtype=str)
            arrays[f"{name}.features"] = np.stack(list(table.values())).astype(np.float32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, self.path)


def _encode_fn(encoder: keras.Model, kind: str) -> Callable[[tf.Tensor], tf.Tensor]:
    if kind == "scene":
        return _scene_fn(encoder)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(image_bytes: tf.Tensor) -> tf.Tensor:
        outputs = encoder(images_from_bytes(image_bytes), training=False)
        return encoder_features(outputs, kind)

    return encode


def _scene_fn(encoder: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """Scene vectors (`scene.py`), with the people and cat faces the cascades find in each
    image, as caption-service finds them when it serves the captioner."""
    from talkative_common.detectors import Detector, empty_detections
    from talkative_common.errors import InvalidInput
    from training.captioner.scene import MAX_DETECTIONS, ROW_SIZE, SceneEncoder

    scene, detector = SceneEncoder(encoder), Detector()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([None, MAX_DETECTIONS, ROW_SIZE], tf.float32),
        ]
    )
    def encode_scene(image_bytes: tf.Tensor, detections: tf.Tensor) -> tf.Tensor:
        return scene(image_bytes, detections)

    def detect(blob: bytes) -> np.ndarray:
        try:
            return detector.detect_photo(blob)
        except InvalidInput:
            return empty_detections()  # TensorFlow's decoder names the bad file next

    def encode(image_bytes: tf.Tensor) -> tf.Tensor:
        rows = np.stack([detect(b) for b in image_bytes.numpy()])
        return encode_scene(image_bytes, tf.constant(rows))

    return encode


def _undecodable(paths: Sequence[Path], blobs: Sequence[bytes]) -> Path | None:
    for path, blob in zip(paths, blobs, strict=True):
        try:
            tf.io.decode_image(blob, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            return path
    return None


def image_features(
    paths: Sequence[Path],
    encoder: keras.Model,
    *,
    kind: str = "pooled",
    cache_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    desc: str = "encode images",
) -> tuple[np.ndarray, FeatureStats]:
    """float32 [len(paths), F] features of the images (`kind`: pooled, class_probs or scene).

    Every file is read and hashed; only contents not in the cache at `cache_path` go
    through the encoder, in batches of `batch_size` with a progress bar. An image
    TensorFlow cannot decode is a DatasetError (a ValueError) naming the file.
    """
    from tqdm import tqdm

    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}: one of {', '.join(FEATURE_KINDS)}")
    cache = FeatureCache(cache_path)
    table = cache.section(kind, encoder_fingerprint(encoder))
    hashes: list[str] = []
    todo: dict[str, Path] = {}
    for path in tqdm(paths, desc="hash images", unit="img", leave=False):
        try:
            digest = content_hash(Path(path).read_bytes())
        except OSError as e:
            raise DatasetError(f"{path}: cannot read the image ({e})") from e
        hashes.append(digest)
        if digest not in table:
            todo.setdefault(digest, Path(path))
    unique = len(set(hashes))
    if todo:
        encode = _encode_fn(encoder, kind)
        items = list(todo.items())
        bar = tqdm(total=len(items), desc=desc, unit="img")
        for number, start in enumerate(range(0, len(items), batch_size), 1):
            batch = items[start : start + batch_size]
            blobs = [path.read_bytes() for _, path in batch]
            try:
                features = encode(tf.constant(blobs)).numpy()
            except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
                bad = _undecodable([p for _, p in batch], blobs)
                bar.close()
                cache.save()  # keep what was encoded before the bad file
                raise DatasetError(
                    f"{bad or batch[0][1]}: not an image TensorFlow can decode "
                    f"(JPEG, PNG, GIF, BMP, WebP): {e.message.splitlines()[0]}"
                ) from e
            for (digest, _), row in zip(batch, features, strict=True):
                table[digest] = row
            bar.update(len(batch))
            if number % SAVE_EVERY_BATCHES == 0:
                cache.save()
        bar.close()
        cache.save()
    stats = FeatureStats(len(paths), unique, unique - len(todo), len(todo))
    dim = FEATURE_KINDS[kind]
    if not hashes:
        return np.zeros((0, dim), np.float32), stats
    return np.stack([table[h] for h in hashes]).astype(np.float32), stats
