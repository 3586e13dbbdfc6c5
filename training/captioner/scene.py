"""The scene the default captioner describes: what is in a photo, how many, and where.

Everything here runs inside the exported graph except the people and cat-face
detectors (OpenCV cascades are not TensorFlow ops), whose boxes caption-service
passes in as `detections` (`talkative_common/detectors.py`). From one photo:

- **main**: the whole-image class posterior (centre crop at 224), what the
  one-subject captioner read;
- **regions**: the whole photo, not cropped, squashed to 320 x 320 and run once
  through the same network; the classifier is applied to the pooled features of a
  3 x 3 grid of overlapping 6 x 6 windows of its 10 x 10 map. That is a crop
  pyramid without running the network once per crop (each window sees a bit more
  than its crop through the receptive field);
- **second subject**: the region whose best class is most probable among the
  classes *unrelated* to the main one (not the same class, not its caption group or
  a kindred one, not a landscape, which is a place rather than a subject), kept
  when that probability reaches SECOND_MIN and outweighs the main class there;
- **people and cats**: counts of face or body boxes (the larger of the two) and of
  cat-face boxes scoring at least DETECTION_MIN;
- **the main subject's box and the people's relation to it**: the box of the cells of
  the whole photo's 10 x 10 map where the main class's activation map (CAM: the
  classifier's weights for that class on each cell's features) is at least
  SUBJECT_SHARE of its range, and where the best person box lies against it (`RELATIONS`:
  under the person, within the person's reach, or apart);
- **place**: evidence in [0, 1] for grass (the share of green pixels in the bottom
  third), sky (blue pixels in the top third), water and a room (the largest mass any
  region gives to ImageNet's waterside or indoor classes). Two gates read the main
  class (`place_gates`): green is grass only under a subject that stands on the
  ground, and blue above a water animal is water, not sky.

The scene is one float vector (layout below). The decoder reads it like the
one-subject captioner read class probabilities, and is trained on synthetic
scenes built to this layout (`synthetic_scenes.py`); the rules turning a scene into
words are in `scene_captions.py`. Nothing here was fitted to a photo: the colour
ranges are the textbook hue bands, the thresholds round numbers.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

from talkative_common.detectors import (
    CAT_FACE,
    DETECTION_MIN,
    FACE,
    FULL_BODY,
    MAX_DETECTIONS,
    PROFILE_FACE,
    ROW_SIZE,
    UPPER_BODY,
)
from training.captioner import imagenet_captions as ic
from training.captioner.encoder import IMAGE_SIZE, decode_image, normalise, preprocess

NUM_CLASSES = ic.NUM_CLASSES
REGION_SIZE = 320  # the photo squashed to this square: a 10 x 10 feature map
WINDOW, WINDOW_STRIDE, GRID = 6, 2, 3  # 3 x 3 windows of 6 x 6 cells
# A region's best unrelated class names a second subject from this probability on.
SECOND_MIN = 0.3

# The scene vector.
MAIN = slice(0, NUM_CLASSES)
SECOND = slice(NUM_CLASSES, 2 * NUM_CLASSES)
_E = 2 * NUM_CLASSES
SECOND_STRENGTH = _E  # the second subject's region probability (0: none)
PEOPLE = slice(_E + 1, _E + 5)  # one-hot: 0, 1, 2, 3 or more
PERSON_SCORE = _E + 5  # the best face or body score, counted or not
CATS = slice(_E + 6, _E + 9)  # one-hot: 0, 1, 2 or more cat faces
PLACES = ("grass", "water", "sky", "room")
PLACE = slice(_E + 9, _E + 9 + len(PLACES))
# Where the main subject is against the best person box, one-hot (`person_relation`):
# none (nobody counted), below (under the person: what one rides or kicks), near (within
# the person's reach), apart.
RELATIONS = ("none", "below", "near", "apart")
RELATION = slice(PLACE.stop, PLACE.stop + len(RELATIONS))
SCENE_DIM = RELATION.stop
# A cell of the map is part of the main subject from this share of its activation map's
# range (min to max).
SUBJECT_SHARE = 0.5
# A face stands for a person one face width wider on each side and reaching this many
# face heights below its top (a standing adult is about 7.5 heads tall).
FACE_REACH_DOWN = 7.0

# Landscapes are where a photo was taken, not a second subject (they feed `water`).
LANDSCAPES = tuple(range(970, 981))
WATER_CLASSES = (973, 975, 977, 978, 460, 536, 449)  # reef, lakeshore, sandbar, beach, ...
# Furniture and what stands in rooms: a couch, a bookcase, a television, a desk...
INDOOR_CLASSES = tuple(
    sorted(
        {*ic.group_named("furniture").members}
        | {527, 598, 619, 624, 664, 721, 750, 753, 762, 846, 851, 884, 905}
    )
)
# Hue bands (HSV, hue in [0, 1)): green 60-160 degrees, blue 187-252 degrees.
GREEN_HUE, BLUE_HUE = (0.16, 0.45), (0.52, 0.70)
# The place gates, from the class table. Blue around a water animal is water: "a grey whale
# in the water", not "under a blue sky".
WATER_ANIMAL_GROUPS = ("fish", "sea creature", "crab", "lobster", "sea mammal")
# Green at the bottom of a photo is grass only under a subject that stands on the ground:
# behind things that climb, perch, fly or swim, and behind close-ups of small animals and
# plants, it is leaves as often as grass; buildings, vehicles on rails or water and
# landscapes are not "on the grass" either.
NOT_ON_GRASS_GROUPS = (
    *WATER_ANIMAL_GROUPS,
    *("amphibian", "lizard", "snake", "spider", "insect", "butterfly"),
    *("ape", "monkey", "lemur"),
    *("building", "bridge", "boat", "aircraft", "rocket", "train", "landscape"),
    *("plant", "flower", "mushroom"),
)
# Birds of branches and the air (finches to the owl, parrots to the toucan), and the two
# tree-dwelling mammals outside those groups (the koala, the three-toed sloth).
NOT_ON_GRASS_CLASSES = (*range(10, 25), *range(87, 97), 105, 364)


# Caption groups whose members the classifier mixes up: never "a cat and a tiger".
KIN = (
    ("cat", "big cat"),
    ("dog", "wild dog", "fox"),
    ("ape", "monkey", "lemur"),
    ("bear", "panda"),
    ("crab", "lobster", "sea creature"),
    ("lizard", "crocodile", "amphibian", "turtle", "snake"),
    ("insect", "butterfly", "spider"),
    ("small mammal", "rabbit", "hoofed", "marsupial", "elephant"),
    ("building", "bridge"),
    ("road vehicle", "motorcycle", "bicycle", "train"),
    ("aircraft", "rocket"),
    ("dish", "bread", "vegetable", "fruit", "drink", "mushroom"),
    ("flower", "plant"),
)


def related_classes() -> np.ndarray:
    """bool [1000, 1000]: classes that cannot be the second subject beside each main class:
    itself, its caption group and the groups of its kin (KIN).

    Not the classes the classifier finds alike by their weights: those are as much the
    things photographed together (a daisy's nearest class is the bee, a tripod's the
    reflex camera) as the things mixed up, so the graph asks instead that the second
    subject outweigh the main one in its own region (SceneBuilder).
    """
    groups = ic.group_of()
    kin = {name: i for i, names in enumerate(KIN) for name in names}
    keys = []
    for c in range(NUM_CLASSES):
        name = groups[c].name
        # Plain objects are related only to themselves.
        keys.append(f"object:{c}" if name == "object" else f"kin:{kin.get(name, name)}")
    key = np.array(keys)
    return key[:, None] == key[None, :]


def _mask(indices: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(NUM_CLASSES, np.float32)
    out[list(indices)] = 1.0
    return out


def never_second() -> np.ndarray:
    """bool [1000]: classes never named as a second subject (landscapes are places)."""
    return _mask(LANDSCAPES).astype(bool)


def place_gates() -> tuple[np.ndarray, np.ndarray]:
    """(on_grass, water_animal), float32 [1000] each: whether the green at the bottom of a
    photo may be grass under each main class, and whether the blue around it is water."""
    groups = ic.group_of()
    names = [groups[c].name for c in range(NUM_CLASSES)]
    on_grass = np.array([n not in NOT_ON_GRASS_GROUPS for n in names], np.float32)
    on_grass[list(NOT_ON_GRASS_CLASSES)] = 0.0
    water_animal = np.array([n in WATER_ANIMAL_GROUPS for n in names], np.float32)
    return on_grass, water_animal


def gate_places(
    grass: Any, water: Any, sky: Any, on_grass: Any, water_animal: Any
) -> tuple[Any, Any, Any]:
    """The place gates on evidence for grass, water and sky (NumPy or TensorFlow, any
    matching shapes; `on_grass` and `water_animal` are the main class's entries of
    `place_gates`): green counts as grass only where the subject can stand on grass, and
    under a water animal the blue counts as water."""
    larger = (water + sky + abs(water - sky)) / 2.0  # max(), for NumPy and TensorFlow alike
    water = water + water_animal * (larger - water)
    return grass * on_grass, water, sky * (1.0 - water_animal)


def subject_box(cam: tf.Tensor) -> tf.Tensor:
    """[B, H, W] activation map of the main class -> [B, 4] its box (x0, y0, x1, y1), as
    shares of the photo's width and height: the cells at least SUBJECT_SHARE of the way
    from the map's lowest to its highest value. A flat map is the whole photo.

    Zhou et al.'s CAM localisation (CVPR 2016) thresholds at a share of the peak and
    keeps the largest connected part; the graph keeps the box of every part, which
    needs no labelling pass and is what "where is it, how big" asks here.
    """
    cam = tf.convert_to_tensor(cam, tf.float32)
    low = tf.reduce_min(cam, axis=[1, 2], keepdims=True)
    span = tf.reduce_max(cam, axis=[1, 2], keepdims=True) - low
    share = tf.where(span > 0.0, (cam - low) / tf.maximum(span, 1e-9), 1.0)
    inside = share >= SUBJECT_SHARE

    def extent(hit: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        cells = tf.shape(hit)[-1]
        index = tf.cast(tf.range(cells), tf.float32)
        size = tf.cast(cells, tf.float32)
        first = tf.reduce_min(tf.where(hit, index, size), axis=-1)
        last = tf.reduce_max(tf.where(hit, index, -1.0), axis=-1)
        return first / size, (last + 1.0) / size

    y0, y1 = extent(tf.reduce_any(inside, axis=2))
    x0, x1 = extent(tf.reduce_any(inside, axis=1))
    return tf.stack([x0, y0, x1, y1], axis=-1)


def person_relation(
    person: tf.Tensor, is_face: tf.Tensor, counted: tf.Tensor, subject: tf.Tensor
) -> tf.Tensor:
    """Where the main subject lies against a person, one-hot over RELATIONS [B, 4].

    person [B, 4]: the best person box (x0, y0, x1, y1); is_face [B]: it is a face, which
    stands for a body one face width wider on each side, reaching FACE_REACH_DOWN face
    heights below its top; counted [B]: a person was counted; subject [B, 4]: the main
    subject's box. *below*: the person's centre is over the subject, whose centre is below
    the person's box (a rider over a horse, a ball at a footballer's feet), however far
    below (reach is not asked there); *near*: the subject meets the person's reach;
    *apart*: neither.
    """
    px0, py0, px1, py1 = tf.unstack(tf.convert_to_tensor(person, tf.float32), axis=-1)
    sx0, sy0, sx1, sy1 = tf.unstack(tf.convert_to_tensor(subject, tf.float32), axis=-1)
    width, height = px1 - px0, py1 - py0
    rx0 = tf.where(is_face, px0 - width, px0)
    rx1 = tf.where(is_face, px1 + width, px1)
    ry1 = tf.where(is_face, tf.minimum(py0 + FACE_REACH_DOWN * height, 1.0), py1)
    centre_x = (px0 + px1) / 2.0
    below = (centre_x >= sx0) & (centre_x <= sx1) & ((sy0 + sy1) / 2.0 >= py1)
    near = (rx0 < sx1) & (sx0 < rx1) & (py0 < sy1) & (sy0 < ry1)
    which = tf.where(below, 1, tf.where(near, 2, 3))
    return tf.one_hot(tf.where(counted, which, 0), len(RELATIONS))


def window_slices(cells: int = REGION_SIZE // 32) -> list[tuple[int, int]]:
    """Top-left cells of the GRID x GRID windows over a cells x cells map."""
    starts = [min(i * WINDOW_STRIDE, cells - WINDOW) for i in range(GRID)]
    return [(y, x) for y in starts for x in starts]


class SceneBuilder:
    """The in-graph scene, built inside the captioner's signatures (its tables are constants)."""

    def __init__(self) -> None:
        self.related = tf.constant(related_classes())
        self.never = tf.constant(never_second())
        self.water = tf.constant(_mask(WATER_CLASSES))
        self.indoor = tf.constant(_mask(INDOOR_CLASSES))
        self.on_grass, self.water_animal = (tf.constant(g) for g in place_gates())

    def regions(self, feature_map: tf.Tensor, classifier: Any) -> tf.Tensor:
        """[B, 10, 10, C] head activations -> [B, 9, 1000] region posteriors
        (`classifier`: the encoder's last Dense layer)."""
        pooled = [
            tf.reduce_mean(feature_map[:, y : y + WINDOW, x : x + WINDOW, :], axis=[1, 2])
            for y, x in window_slices()
        ]
        stacked = tf.stack(pooled, axis=1)  # [B, 9, C]
        logits = classifier(tf.reshape(stacked, [-1, tf.shape(stacked)[-1]]))
        return tf.reshape(tf.nn.softmax(logits, axis=-1), [-1, len(pooled), NUM_CLASSES])

    def main_map(self, feature_map: tf.Tensor, classifier: Any, main: tf.Tensor) -> tf.Tensor:
        """[B, 10, 10, C] head activations, the classifier, main [B, 1000] -> the main
        class's activation map [B, 10, 10] (its logit on each cell, less the bias, which
        shifts every cell alike)."""
        top = tf.argmax(main, axis=-1, output_type=tf.int32)
        weights = tf.transpose(tf.gather(classifier.kernel, top, axis=1))  # [B, C]
        return tf.einsum("byxc,bc->byx", feature_map, weights)

    def __call__(
        self,
        main: tf.Tensor,
        regions: tf.Tensor,
        small_image: tf.Tensor,
        detections: tf.Tensor,
        main_map: tf.Tensor,
    ) -> tf.Tensor:
        """main [B, 1000], regions [B, 9, 1000], small_image [B, 320, 320, 3] (0..255),
        detections [B, 16, 6], main_map [B, 10, 10] (`main_map`) -> the scene
        [B, SCENE_DIM]."""
        main = tf.convert_to_tensor(main)
        regions = tf.convert_to_tensor(regions)
        top = tf.argmax(main, axis=-1, output_type=tf.int32)
        banned = tf.logical_or(tf.gather(self.related, top), self.never[None, :])  # [B, 1000]
        candidates = regions * tf.cast(tf.logical_not(banned), tf.float32)[:, None, :]
        best = tf.reduce_max(candidates, axis=-1)  # [B, 9]
        # A second subject outweighs the main one in its own region.
        main_there = tf.gather(regions, top, axis=2, batch_dims=1)  # [B, 9]
        best = tf.where(best >= main_there, best, 0.0)
        which = tf.argmax(best, axis=-1, output_type=tf.int32)
        strength = tf.reduce_max(best, axis=-1)
        chosen = tf.gather(candidates, which, batch_dims=1)  # [B, 1000]
        present = tf.cast(strength >= SECOND_MIN, tf.float32)
        second = chosen / tf.maximum(tf.reduce_sum(chosen, -1, keepdims=True), 1e-9)
        second *= present[:, None]
        strength *= present

        det = tf.convert_to_tensor(detections)
        kind = tf.cast(tf.round(det[..., 0]), tf.int32)
        score = det[..., 1]
        strong = score >= DETECTION_MIN

        def count(*kinds: int) -> tf.Tensor:
            hit = tf.reduce_any(tf.stack([tf.equal(kind, k) for k in kinds], -1), -1)
            return tf.reduce_sum(tf.cast(hit & strong, tf.int32), -1)

        people = tf.maximum(count(FACE, PROFILE_FACE), count(UPPER_BODY, FULL_BODY))
        is_person = tf.logical_and(kind >= FACE, kind <= FULL_BODY)
        person_score = tf.reduce_max(tf.where(is_person, score, 0.0), axis=-1)
        cats = count(CAT_FACE)
        # The best counted person box against the main subject's.
        best_person = tf.argmax(
            tf.where(is_person & strong, score, -1.0), axis=-1, output_type=tf.int32
        )
        relation = person_relation(
            tf.gather(det[..., 2:], best_person, batch_dims=1),
            tf.gather(kind <= PROFILE_FACE, best_person, batch_dims=1),
            people > 0,
            subject_box(main_map),
        )

        hsv = tf.image.rgb_to_hsv(tf.cast(small_image, tf.float32) / 255.0)
        h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        third = REGION_SIZE // 3
        green = (h >= GREEN_HUE[0]) & (h <= GREEN_HUE[1]) & (s > 0.2) & (v > 0.15)
        blue = (h >= BLUE_HUE[0]) & (h <= BLUE_HUE[1]) & (s > 0.15) & (v > 0.45)
        grass = tf.reduce_mean(tf.cast(green[:, -third:, :], tf.float32), axis=[1, 2])
        sky = tf.reduce_mean(tf.cast(blue[:, :third, :], tf.float32), axis=[1, 2])
        every = tf.concat([main[:, None, :], regions], axis=1)
        water = tf.reduce_max(tf.reduce_sum(every * self.water, -1), -1)
        room = tf.reduce_max(tf.reduce_sum(every * self.indoor, -1), -1)
        grass, water, sky = gate_places(
            grass,
            water,
            sky,
            tf.gather(self.on_grass, top),
            tf.gather(self.water_animal, top),
        )

        return tf.concat(
            [
                main,
                second,
                strength[:, None],
                tf.one_hot(tf.minimum(people, 3), 4),
                person_score[:, None],
                tf.one_hot(tf.minimum(cats, 2), 3),
                tf.stack([grass, water, sky, room], axis=-1),
                relation,
            ],
            axis=-1,
        )


def scene_images(image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """string [B] -> (the encoder's centre crop [B, 224, 224, 3], normalised; the whole
    photo squashed to [B, 320, 320, 3], 0..255), each photo decoded once."""

    def one(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = decode_image(data)
        small = tf.image.resize(
            tf.cast(image, tf.float32), [REGION_SIZE, REGION_SIZE], antialias=True
        )
        return preprocess(image), tf.clip_by_value(small, 0.0, 255.0)

    return tf.map_fn(
        one,
        image_bytes,
        fn_output_signature=(
            tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
            tf.TensorSpec([REGION_SIZE, REGION_SIZE, 3], tf.float32),
        ),
    )


class SceneEncoder:
    """Photos and their detections -> scene vectors, with one set of encoder weights.

    `encoder` is `encoder.build_encoder(None, feature_map=True)` with ImageNet weights:
    it runs once on the centre crop (the main posterior) and once on the whole photo
    at 320 (the regions).
    """

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.classifier = encoder.get_layer("fc")
        self.builder = SceneBuilder()

    def __call__(self, image_bytes: tf.Tensor, detections: tf.Tensor) -> tf.Tensor:
        crop, small = scene_images(image_bytes)
        feature_map = self.encoder(normalise(small), training=False)["map"]
        regions = self.builder.regions(feature_map, self.classifier)
        # The centre crop at the size the classifier was trained at names the main subject
        # best: on the design photos, the regions' mean or the whole map's pooled features
        # (which would save a pass) named it less often.
        main = tf.nn.softmax(self.encoder(crop, training=False)["logits"], axis=-1)
        main_map = self.builder.main_map(feature_map, self.classifier, main)
        return self.builder(main, regions, small, detections, main_map)


def no_detections(image_bytes: tf.Tensor) -> tf.Tensor:
    """Empty detections for each photo: what callers without the cascades send."""
    return tf.zeros([tf.shape(image_bytes)[0], MAX_DETECTIONS, ROW_SIZE], tf.float32)
