"""The scene captioner's parts: the in-graph scene, the teacher's rules, the synthetic scenes
and the exam's marking (training/captioner/scene.py, scene_captions.py,
synthetic_scenes.py, exam.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training.captioner import exam
from training.captioner import imagenet_captions as ic
from training.captioner import scene as sc
from training.captioner import scene_captions as rules
from training.captioner.scene_captions import Scene

TABBY, TIGER, DAISY, BEE, COUCH, CAMERA, CANOE, AIRLINER = 281, 292, 985, 309, 831, 759, 472, 404
LAKESHORE, GIBBON, TOUCAN, GREY_WHALE, BISON, DRAKE = 975, 368, 96, 147, 347, 97
HORSE, SOCCER_BALL, GUITAR, WIND_CHIME, ZEBRA, MOPED = 339, 805, 402, 494, 340, 665


def onehot(index: int, p: float = 1.0) -> np.ndarray:
    out = np.full(ic.NUM_CLASSES, (1.0 - p) / (ic.NUM_CLASSES - 1), np.float32)
    out[index] = p
    return out


def mix(*parts: tuple[int, float]) -> np.ndarray:
    """These classes with these probabilities, the rest spread over the others."""
    rest = 1.0 - sum(p for _, p in parts)
    out = np.full(ic.NUM_CLASSES, rest / (ic.NUM_CLASSES - len(parts)), np.float32)
    for index, p in parts:
        out[index] = p
    return out


def test_related_classes_keep_kin_and_let_co_occurring_things_apart() -> None:
    related = sc.related_classes()
    assert related.shape == (1000, 1000) and (related == related.T).all()
    assert related[TABBY, TIGER]  # a cat and a big cat: mixed up, never "a cat and a tiger"
    assert related[TABBY, 285]  # two cats of one group
    assert not related[DAISY, BEE]  # photographed together, and both can be named
    assert not related[414, 898]  # a backpack and a water bottle (two plain objects)
    assert related[CAMERA, 872]  # a reflex camera and a tripod: one caption group
    assert related[CAMERA, CAMERA]
    assert sc.never_second()[LAKESHORE] and not sc.never_second()[BEE]


def build(
    main: np.ndarray,
    regions: list[np.ndarray],
    image: np.ndarray | None = None,
    detections: list[list[float]] | None = None,
    main_map: np.ndarray | None = None,
) -> np.ndarray:
    rows = np.zeros((1, sc.MAX_DETECTIONS, 6), np.float32)
    for i, row in enumerate(detections or []):
        rows[0, i] = row
    image = np.zeros((sc.REGION_SIZE, sc.REGION_SIZE, 3), np.float32) if image is None else image
    regions = regions + [main] * (9 - len(regions))
    vector = sc.SceneBuilder()(
        tf.constant(main[None]),
        tf.constant(np.stack(regions)[None]),
        tf.constant(image[None], tf.float32),
        tf.constant(rows),
        tf.constant((np.zeros((10, 10)) if main_map is None else main_map)[None], tf.float32),
    )
    assert vector.shape == (1, sc.SCENE_DIM)
    return vector.numpy()[0]


def test_a_region_dominated_by_an_unrelated_class_is_the_second_subject() -> None:
    main = onehot(DAISY, 0.8)
    vector = build(main, [mix((BEE, 0.6), (DAISY, 0.3))])
    assert vector[sc.SECOND_STRENGTH] == pytest.approx(0.6, abs=1e-3)
    assert int(np.argmax(vector[sc.SECOND])) == BEE
    assert vector[sc.SECOND].sum() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(vector[sc.MAIN], main, atol=1e-6)


@pytest.mark.parametrize(
    "region",
    [
        mix((TIGER, 0.9)),  # kin of the main class
        mix((BEE, 0.4), (DAISY, 0.5)),  # the main class still outweighs it there
        mix((BEE, 0.2)),  # too weak (SECOND_MIN)
        mix((LAKESHORE, 0.9)),  # a place, not a subject
    ],
    ids=["kin", "outweighed", "weak", "landscape"],
)
def test_no_second_subject(region: np.ndarray) -> None:
    main = onehot(TABBY if region.argmax() == TIGER else DAISY, 0.8)
    vector = build(main, [region])
    assert vector[sc.SECOND_STRENGTH] == 0 and not vector[sc.SECOND].any()


def test_people_and_cats_are_counted_from_strong_boxes() -> None:
    strong, weak = 0.8, 0.2
    vector = build(
        onehot(TABBY),
        [],
        detections=[
            [sc.FACE, strong, 0.1, 0.1, 0.2, 0.2],
            [sc.PROFILE_FACE, strong, 0.5, 0.1, 0.6, 0.2],
            [sc.FACE, weak, 0.7, 0.1, 0.8, 0.2],  # under DETECTION_MIN: not counted
            [sc.UPPER_BODY, strong, 0.0, 0.0, 0.5, 0.9],
            [sc.CAT_FACE, strong, 0.3, 0.5, 0.4, 0.6],
            [sc.CAT_FACE, strong, 0.6, 0.5, 0.7, 0.6],
        ],
    )
    assert int(np.argmax(vector[sc.PEOPLE])) == 2  # two faces, one body: two people
    assert vector[sc.PERSON_SCORE] == pytest.approx(strong)
    assert int(np.argmax(vector[sc.CATS])) == 2
    empty = build(onehot(TABBY), [])
    assert int(np.argmax(empty[sc.PEOPLE])) == 0 and int(np.argmax(empty[sc.CATS])) == 0


def hot(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    """A 10 x 10 activation map, hot on rows y0..y1-1 and columns x0..x1-1."""
    out = np.random.default_rng(0).uniform(-1.0, 0.4, (10, 10)).astype(np.float32)
    out[y0:y1, x0:x1] = 3.0
    return out


def test_the_main_subjects_box_is_where_its_activation_map_is_high() -> None:
    boxes = sc.subject_box(tf.constant(np.stack([hot(6, 2, 10, 5), hot(0, 0, 1, 1)]))).numpy()
    np.testing.assert_allclose(boxes, [[0.2, 0.6, 0.5, 1.0], [0.0, 0.0, 0.1, 0.1]], atol=1e-6)
    # The box spans every hot part (Zhou et al. keep the largest; the graph keeps them all).
    both = hot(0, 0, 2, 2)
    both[8:, 8:] = 3.0
    np.testing.assert_allclose(sc.subject_box(tf.constant(both[None]))[0], [0, 0, 1, 1])
    # A flat map says nothing about where: the whole photo.
    flat = sc.subject_box(tf.constant(np.full((1, 10, 10), 2.0, np.float32)))
    np.testing.assert_allclose(flat[0], [0, 0, 1, 1])


def test_the_main_map_is_the_main_classs_weights_on_each_cell() -> None:
    class Classifier:  # what SceneBuilder reads of the encoder's Dense layer
        kernel = tf.constant(np.random.default_rng(1).normal(size=(8, 1000)), tf.float32)

    cells = np.random.default_rng(2).normal(size=(2, 10, 10, 8)).astype(np.float32)
    main = np.stack([onehot(HORSE), onehot(GUITAR)])
    out = sc.SceneBuilder().main_map(tf.constant(cells), Classifier(), tf.constant(main))
    kernel = Classifier.kernel.numpy()
    expected = np.stack([cells[0] @ kernel[:, HORSE], cells[1] @ kernel[:, GUITAR]])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("person", "is_face", "subject", "expected"),
    [
        # A rider's face over a horse's box; a footballer's face over the ball at their feet.
        ([0.45, 0.1, 0.55, 0.2], True, [0.2, 0.3, 0.8, 0.9], "below"),
        ([0.45, 0.1, 0.5, 0.15], True, [0.4, 0.8, 0.5, 0.9], "below"),
        # A guitar held at the chest: inside the face's reach, not under its centre.
        ([0.2, 0.1, 0.3, 0.2], True, [0.35, 0.3, 0.7, 0.6], "near"),
        # A face beside the subject's top: its centre is not under the face.
        ([0.15, 0.4, 0.25, 0.5], True, [0.3, 0.2, 0.9, 0.9], "near"),
        # Out of reach: to the side, further than a face width.
        ([0.05, 0.1, 0.15, 0.2], True, [0.6, 0.0, 1.0, 1.0], "apart"),
        # Out of a face's reach (7 face heights down from its top is 0.56 here): under it,
        # it is still below (the graph does not ask for reach there); beside it, apart.
        ([0.45, 0.0, 0.55, 0.08], True, [0.4, 0.7, 0.6, 1.0], "below"),
        ([0.0, 0.0, 0.1, 0.08], True, [0.4, 0.7, 0.6, 1.0], "apart"),
        # A body box reaches only as far as itself.
        ([0.0, 0.0, 0.3, 0.6], False, [0.35, 0.3, 0.7, 0.6], "apart"),
        ([0.0, 0.0, 0.4, 0.6], False, [0.35, 0.3, 0.7, 0.6], "near"),
    ],
)
def test_where_the_subject_lies_against_the_person(
    person: list[float], is_face: bool, subject: list[float], expected: str
) -> None:
    out = sc.person_relation(
        tf.constant([person]), tf.constant([is_face]), tf.constant([True]), tf.constant([subject])
    )
    assert sc.RELATIONS[int(np.argmax(out[0]))] == expected and float(tf.reduce_sum(out)) == 1.0
    nobody = sc.person_relation(
        tf.constant([person]), tf.constant([is_face]), tf.constant([False]), tf.constant([subject])
    )
    assert sc.RELATIONS[int(np.argmax(nobody[0]))] == "none"


def test_the_graph_reads_the_best_counted_person_against_the_subject() -> None:
    def relation(*rows: list[float]) -> str:
        ball_low = hot(8, 4, 10, 6)  # the subject in the bottom fifth, middle
        vector = build(onehot(SOCCER_BALL), [], detections=list(rows), main_map=ball_low)
        return sc.RELATIONS[int(np.argmax(vector[sc.RELATION]))]

    rider = [sc.FACE, 0.9, 0.45, 0.1, 0.55, 0.2]
    aside = [sc.FACE, 0.6, 0.0, 0.1, 0.1, 0.2]
    weak = [sc.FACE, 0.3, 0.45, 0.1, 0.55, 0.2]
    cat = [sc.CAT_FACE, 0.9, 0.45, 0.1, 0.55, 0.2]
    assert relation(rider, aside) == "below"  # the best counted box decides
    assert relation(aside) == "apart"
    # Cat faces and boxes under DETECTION_MIN are no person: no relation.
    assert relation(cat, weak) == "none"
    assert build(onehot(SOCCER_BALL), [])[sc.RELATION].tolist() == [1.0, 0.0, 0.0, 0.0]


def blue_sky_green_ground() -> np.ndarray:
    image = np.full((sc.REGION_SIZE, sc.REGION_SIZE, 3), 128.0, np.float32)  # grey
    image[: sc.REGION_SIZE // 3] = (90, 150, 230)  # a blue top third
    image[-sc.REGION_SIZE // 3 :] = (60, 160, 50)  # a green bottom third
    return image


def places(vector: np.ndarray) -> dict[str, float]:
    return dict(zip(sc.PLACES, vector[sc.PLACE].tolist(), strict=True))


def test_grass_and_sky_come_from_colour_water_and_room_from_classes() -> None:
    place = places(build(onehot(CAMERA), [mix((LAKESHORE, 0.7))], image=blue_sky_green_ground()))
    assert place["grass"] > 0.95 and place["sky"] > 0.95
    assert place["water"] == pytest.approx(0.7, abs=0.01) and place["room"] < 0.02
    grey = build(onehot(COUCH), [])
    assert grey[sc.PLACE][sc.PLACES.index("grass")] == 0
    assert grey[sc.PLACE][sc.PLACES.index("room")] > 0.99  # a couch is indoor furniture


@pytest.mark.parametrize("main", [BISON, DRAKE, CAMERA, TABBY])
def test_green_is_grass_under_what_stands_on_the_ground(main: int) -> None:
    assert places(build(onehot(main), [], image=blue_sky_green_ground()))["grass"] > 0.95


@pytest.mark.parametrize("main", [GIBBON, TOUCAN, DAISY, BEE, CANOE, GREY_WHALE])
def test_green_is_not_grass_under_what_climbs_perches_swims_or_is_close_up(main: int) -> None:
    place = places(build(onehot(main), [], image=blue_sky_green_ground()))
    assert place["grass"] == 0.0
    assert place["sky"] > 0.95 or main == GREY_WHALE


def test_blue_around_a_water_animal_is_water_not_sky() -> None:
    place = places(build(onehot(GREY_WHALE), [], image=blue_sky_green_ground()))
    assert place["sky"] == 0.0 and place["water"] > 0.95
    # Waterside classes that say more than the blue are kept.
    dark = np.zeros((sc.REGION_SIZE, sc.REGION_SIZE, 3), np.float32)
    sure = places(build(onehot(GREY_WHALE), [mix((LAKESHORE, 0.2))], image=dark))
    assert sure["water"] == pytest.approx(0.2, abs=0.01) and sure["sky"] == 0.0
    # The gates are the same function in the sampler (NumPy) and in the graph.
    on_grass, water_animal = sc.place_gates()
    assert sc.gate_places(0.9, 0.2, 0.7, on_grass[GREY_WHALE], water_animal[GREY_WHALE]) == (
        0.0,
        pytest.approx(0.7),
        0.0,
    )
    assert sc.gate_places(0.9, 0.2, 0.7, on_grass[BISON], water_animal[BISON]) == (
        pytest.approx(0.9),
        pytest.approx(0.2),
        pytest.approx(0.7),
    )


@pytest.mark.parametrize(
    ("scene", "expected"),
    [
        (Scene(TABBY, False), "a tabby cat."),  # as the one-subject captioner said
        (Scene(TABBY, True, cats=2), "two cats."),
        (Scene(TABBY, False, second=COUCH), "a tabby cat on a couch."),
        (Scene(DAISY, False, second=BEE), "a daisy and a bee."),
        (
            Scene(CAMERA, False, people=1, place="grass"),
            "a person with a reflex camera on the grass.",
        ),
        (Scene(CAMERA, False, people=3), "a group of people with a reflex camera."),
        (Scene(CANOE, False, place="water"), f"{ic.phrase(CANOE)} on the water."),
        (Scene(TABBY, False, place="water"), "a tabby cat by the water."),
        (Scene(GREY_WHALE, False, place="water"), f"{ic.phrase(GREY_WHALE)} in the water."),
        (Scene(AIRLINER, False, place="sky"), "an airliner in the sky."),
        (Scene(TABBY, False, place="sky"), "a tabby cat under a blue sky."),
        (Scene(795, False, people=2), "a person skiing and another person."),
        (Scene(HORSE, False, people=1, relation="below"), "a person riding a chestnut horse."),
        (Scene(HORSE, False, people=1, relation="near"), "a person with a chestnut horse."),
        (Scene(HORSE, False, people=1, relation="apart"), "a person next to a chestnut horse."),
        (Scene(HORSE, True, people=1, relation="below"), "a person with an animal."),
        (Scene(ZEBRA, False, people=1, relation="below"), "a person with a zebra."),
        (Scene(MOPED, True, people=1, relation="below"), "a person riding a motorcycle."),
        (Scene(HORSE, False, people=2, relation="below"), "two people with a chestnut horse."),
        (
            Scene(SOCCER_BALL, False, people=1, relation="below", place="grass"),
            "a person kicking a soccer ball on the grass.",
        ),
        (Scene(SOCCER_BALL, False, people=1, relation="near"), "a person with a soccer ball."),
        (Scene(GUITAR, False, people=1, relation="near"), "a person playing an acoustic guitar."),
        (Scene(GUITAR, False, people=1, relation="below"), "a person playing an acoustic guitar."),
        (Scene(GUITAR, False, people=1, relation="apart"), "a person next to an acoustic guitar."),
        (Scene(WIND_CHIME, False, people=1, relation="near"), "a person with a wind chime."),
        (
            Scene(CAMERA, False, people=3, relation="apart"),
            "a group of people next to a reflex camera.",
        ),
    ],
)
def test_the_teachers_captions(scene: Scene, expected: str) -> None:
    assert rules.captions(scene)[0] == expected


def test_the_ground_comes_before_the_sky() -> None:
    table_free = np.zeros(sc.SCENE_DIM, np.float32)
    table_free[sc.MAIN] = onehot(CAMERA)
    table_free[sc.PEOPLE.start] = 1.0
    table_free[sc.CATS.start] = 1.0
    table_free[sc.PLACE] = [0.7, 0.0, 0.9, 0.0]  # grass, water, sky, room

    class NoGroups:  # the teacher asks the table only about groups of hesitant classes
        group_id = np.full(1000, -1)

    assert rules.read(table_free, NoGroups()).place == "grass"  # type: ignore[arg-type]
    table_free[sc.PLACE] = [0.3, 0.0, 0.9, 0.0]
    assert rules.read(table_free, NoGroups()).place == "sky"  # type: ignore[arg-type]


def test_named_things_and_what_counts_as_present() -> None:
    caption = "a photo of a person with a camera on a tripod on the grass."
    assert rules.named_things(caption) == ["person", "camera on a tripod", "grass"]
    assert rules.named_things("two cats on a couch in a room.") == ["cats", "couch", "room"]
    riding = "a person riding a chestnut horse next to a soccer ball."
    assert rules.named_things(riding) == ["person", "chestnut horse", "soccer ball"]
    assert rules.supported("camera on a tripod", ["tripod"])
    assert rules.supported("cup of espresso coffee", ["coffee"])
    assert not rules.supported("grass", ["person", "camera"])
    assert not rules.supported("person with a parachute", ["kite", "sky"])


def test_the_sampler_draws_what_the_graph_can_output() -> None:
    from training.captioner.synthetic import ClassTable
    from training.captioner.synthetic_scenes import SceneSampler

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 1000)).astype(np.float32)
    table = ClassTable.build(weights)
    sampler = SceneSampler(table)
    related = sc.related_classes()
    on_grass, water_animal = sc.place_gates()
    vectors, captions = sampler.batch(np.random.default_rng(1), 400)
    assert vectors.shape == (400, sc.SCENE_DIM) and len(captions) == 400
    for v, caption in zip(vectors, captions, strict=True):
        assert v[sc.PEOPLE].sum() == 1 and v[sc.CATS].sum() == 1 and v[sc.RELATION].sum() == 1
        # As in the graph: a relation exactly when a person is counted.
        assert (v[sc.RELATION.start] == 1.0) == (v[sc.PEOPLE.start] == 1.0)
        if v[sc.SECOND_STRENGTH]:
            assert v[sc.SECOND_STRENGTH] >= sc.SECOND_MIN
            second = int(np.argmax(v[sc.SECOND]))
            assert not related[int(np.argmax(v[sc.MAIN])), second]
        assert caption in rules.captions(rules.read(v, table))
        main = int(np.argmax(v[sc.MAIN]))
        if not on_grass[main]:
            assert v[sc.PLACE][sc.PLACES.index("grass")] == 0.0
        if water_animal[main]:
            assert v[sc.PLACE][sc.PLACES.index("sky")] == 0.0
    composed = [c for c in captions if " with " in c or " and " in c or " on the " in c]
    assert len(composed) > 100  # most scenes say more than one thing
    relations = {sc.RELATIONS[int(np.argmax(v[sc.RELATION]))] for v in vectors}
    assert relations == set(sc.RELATIONS)
    assert any(" next to " in c for c in captions)


def test_exam_halves_are_fixed_by_name_and_both_are_filled() -> None:
    photos = exam.photos()
    assert len(photos) >= 30 and len({p.name for p in photos}) == len(photos)
    halves = {h: [p for p in photos if p.half == h] for h in exam.HALVES}
    assert all(len(v) >= 10 for v in halves.values())
    assert exam.half_of("chelsea") == "design" and exam.half_of("camera") == "test"
    for photo in photos:
        for subject in photo.subjects:
            assert subject.accepted, photo.name
        assert photo.load()[:2] == b"\xff\xd8", photo.name  # JPEG bytes


def test_exam_marks_absent_things_per_photo() -> None:
    camera = next(p for p in exam.photos() if p.name == "camera")
    good = exam.score(camera, "a person with a camera on a tripod on the grass.")
    assert good["names_main"] and good["names_two"] and good["absent"] == []
    bad = exam.score(camera, "a camera on a tripod by the water.")
    assert not bad["names_main"] and not bad["names_two"] and bad["absent"] == ["water"]
    summary = exam.summary([good, bad])
    assert summary["test"]["photos"] == 2 and summary["test"]["absent_things"] == 1
    assert summary["test"]["photos_with_absent_things"] == ["camera"]
    # person, camera on a tripod, grass; camera on a tripod, water: 4 of 5 present.
    assert summary["test"]["things_named"] == 5
    assert summary["test"]["named_present_share"] == 0.8
    assert summary["design"]["things_named"] == 0 and summary["design"]["photos"] == 0
    assert summary["design"]["named_present_share"] is None  # nothing named: no precision
    # A man and a camera have classes of their own (a person wearing..., a reflex camera).
    assert good["main_has_own_class"] and summary["test"]["main_with_own_class"] == 2
    assert summary["test"]["names_main_with_own_class"] == 1


def test_the_exam_tells_subjects_with_a_class_of_their_own_from_the_others() -> None:
    # A cow has no ImageNet class ("ox" is not accepted for it), nor has a giraffe: only a
    # group's word ("an animal") can name them. A tabby cat and a rocket have theirs.
    assert exam.has_own_class(("cat",)) and exam.has_own_class(("rocket", "missile"))
    assert not exam.has_own_class(("giraffe",)) and not exam.has_own_class(("cow", "calf"))
    assert exam.has_own_class(("animal", "giraffe")) is False  # the group word is no class


def test_new_exam_marks_are_written_into_a_card_that_carries_an_exam(tmp_path: Path) -> None:
    version = tmp_path / "2"
    (version / "assets.extra").mkdir(parents=True)
    card = version / "assets.extra" / "model_card.json"
    marks = [
        {**exam.score(p, "a cat on the grass."), "captions": ["a cat on the grass."]}
        for p in exam.photos()
    ]
    card.write_text(json.dumps({"name": "c", "evaluation": {"exam": {}, "exam_photos": []}}))
    assert exam.write_card(version, marks)
    evaluation = json.loads(card.read_text())["evaluation"]
    assert evaluation["exam"] == exam.summary(marks) and evaluation["exam_photos"] == marks
    assert evaluation["exam_sat"]["photos"] == len(exam.photos())
    card.write_text(json.dumps({"name": "v1", "evaluation": {"bleu": 0.1}}))
    assert not exam.write_card(version, marks)  # a card without an exam is left alone
    assert json.loads(card.read_text()) == {"name": "v1", "evaluation": {"bleu": 0.1}}
