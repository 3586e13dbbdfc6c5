"""The scene rules: what the default captioner is taught to say about a scene vector.

A fixed teacher reads a scene (`scene.py`'s layout) as decisions, a `Scene`, and
composes captions from the class phrases of `imagenet_captions.py`:

- the main subject, named as before (the class, or its group when the encoder
  hesitates between members): "a tabby cat";
- how many people: a person with the subject, two people, a group of people;
  people named by their clothes or sport stay as they were ("a person skiing"),
  with another person or other people beside them;
- how one person stands to the subject (`scene.RELATIONS`, from the boxes): riding
  what one rides and kicking a soccer ball when it is under them, playing an
  instrument within reach, "next to" the subject when it is out of reach, "with"
  it otherwise;
- two or more cat faces over a cat: "two cats";
- a second subject: on it when it is something to be on (furniture, a table),
  beside it with "and" otherwise: "a cat on a couch", "a daisy and a bee";
- the place, when its evidence passes PLACE_MIN: on the grass, on (boats), in (water
  animals) or by the water, in a room, or else in (things that fly) or under a blue sky.

A photo with none of these gets the one-subject captions it always got. The rules
were written from the ImageNet class table and the detectors' kinds, before any
exam photo was captioned with them; `named_things` lists what a caption names, so
the exam can check each against what a photo holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

from training.captioner import imagenet_captions as ic
from training.captioner import scene as sc
from training.captioner import synthetic

# A place is named from this evidence (a share of pixels or a class mass).
PLACE_MIN = 0.5
GROUND_PLACES = ("grass", "water", "room")
PERSON_GROUPS = ("clothing", "activity")
FLYING_GROUPS = ("aircraft",)
FLYING_CLASSES = (21, 405, 417, 701)  # a kite (the bird), an airship, a balloon, a parachute
# Second subjects one is "on": furniture, tables, benches, beds, rugs, carts...
SURFACES = (
    *ic.group_named("furniture").members,
    532,  # dining table
    703,  # park bench
    741,  # prayer rug
    736,  # pool table
)
# What a person does with the subject, by where it is (scene.RELATIONS): what one rides
# (a horse, a camel, an elephant, bicycles, motorcycles) and kicks, when it is under the
# person; an instrument (not the wind chime) one plays, when it is under or near them.
RIDDEN = (339, 354, 101, 385, 386, 444, 671, 870, 665, 670)
KICKED = (805,)  # a soccer ball
PLAYED = tuple(c for c in ic.group_named("instrument").members if c != 494)
# The usual form first; a photo of ... second.
COMPOSED_WEIGHTS = (0.75, 0.25)


@dataclass(frozen=True)
class Scene:
    main: int
    main_group: bool  # name the main subject's group rather than its class
    second: int | None = None
    second_group: bool = False
    people: int = 0  # 0, 1, 2, 3 (= three or more)
    cats: int = 0  # 0, 1, 2 (= two or more)
    place: str | None = None  # one of scene.PLACES
    relation: str = "none"  # one of scene.RELATIONS: the subject against the best person


def read(vector: np.ndarray, table: synthetic.ClassTable) -> Scene:
    """The teacher's decisions about one scene vector."""
    main, main_group = synthetic.teacher(vector[sc.MAIN], table)
    second, second_group = None, False
    if vector[sc.SECOND_STRENGTH] >= sc.SECOND_MIN:
        second, second_group = synthetic.teacher(vector[sc.SECOND], table)
    people = int(np.argmax(vector[sc.PEOPLE]))
    evidence = dict(zip(sc.PLACES, vector[sc.PLACE], strict=True))
    # What the subject stands on or in comes first; the sky only when there is none.
    ground = max(GROUND_PLACES, key=lambda k: evidence[k])
    place = ground if evidence[ground] >= PLACE_MIN else None
    if place is None and evidence["sky"] >= PLACE_MIN:
        place = "sky"
    return Scene(
        main,
        main_group,
        second,
        second_group,
        people=people,
        cats=int(np.argmax(vector[sc.CATS])),
        place=place,
        relation=sc.RELATIONS[int(np.argmax(vector[sc.RELATION]))],
    )


def _bare(text: str) -> str:
    return text.rstrip(".")


def _group(index: int) -> str:
    return ic.group_of()[index].name


def _name(index: int, group: bool) -> str:
    hypernym = ic.group_of()[index].hypernym
    return hypernym if group and hypernym else ic.phrase(index)


def _place_phrase(place: str, main: int) -> str:
    group = _group(main)
    if place == "water":
        if group == "boat":
            return "on the water"
        return "in the water" if group in sc.WATER_ANIMAL_GROUPS else "by the water"
    if place == "sky":
        flies = group in FLYING_GROUPS or main in FLYING_CLASSES
        return "in the sky" if flies else "under a blue sky"
    return {"grass": "on the grass", "room": "in a room"}[place]


def _people_words(people: int) -> str:
    return {1: "a person", 2: "two people"}.get(people, "a group of people")


def _doing(scene: Scene) -> str:
    """What the people do with the main subject: a verb for one person, from where the
    subject is; "next to" when it is out of their reach; "with" otherwise."""
    if scene.relation == "apart":
        return "next to"
    if scene.people == 1:
        # "riding an animal" would guess too much: only a class, or a group one rides.
        named = not scene.main_group or _group(scene.main) in ("bicycle", "motorcycle")
        if scene.relation == "below" and named and scene.main in RIDDEN:
            return "riding"
        if scene.relation == "below" and scene.main in KICKED:
            return "kicking"
        if scene.main in PLAYED:
            return "playing"
    return "with"


def captions(scene: Scene) -> tuple[str, ...]:
    """The captions the teacher allows for `scene`, the most usual first."""
    plain = scene.second is None and scene.place is None and scene.people == 0
    if plain and scene.cats < 2:
        return synthetic.teacher_captions(scene.main, scene.main_group)
    if _group(scene.main) in PERSON_GROUPS:
        # The class already says a person is there: "a person wearing a kimono".
        core = _bare(synthetic.teacher_captions(scene.main, scene.main_group)[0])
        if scene.people == 2:
            core += " and another person"
        elif scene.people == 3:
            core += " and other people"
    else:
        core = _name(scene.main, scene.main_group)
        if scene.cats >= 2 and _group(scene.main) == "cat":
            core = "two cats"
        if scene.people:
            core = f"{_people_words(scene.people)} {_doing(scene)} {core}"
    if scene.second is not None:
        second = _name(scene.second, scene.second_group)
        core += f" on {second}" if scene.second in SURFACES else f" and {second}"
    if scene.place is not None:
        core += " " + _place_phrase(scene.place, scene.main)
    return (f"{core}.", f"a photo of {core}.")


def caption_for(scene: Scene, rng: np.random.Generator) -> str:
    options = captions(scene)
    weights = np.array(
        (synthetic.TEMPLATE_WEIGHTS if len(options) != 2 else COMPOSED_WEIGHTS)[: len(options)]
    )
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def all_captions() -> Iterable[str]:
    """Every word the teacher can use, for the vocabulary (one caption per form)."""
    yield from ic.all_captions()
    yield "a person with two cats and a group of people on the grass by the water."
    yield "on the water in the sky under a blue sky in a room and another person other people."
    yield "a person riding kicking playing next to."


# Words that name nothing: articles, prepositions and the templates' framing.
_FRAMING = {
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "by",
    "with",
    "and",
    "under",
    "photo",
    "close-up",
    "view",
    "another",
    "other",
    "one",
    "two",
    "group",
    "some",
    "for",
    "ready",
    "launch",
    "parked",
    "outside",
    "bloom",
    "wearing",
    "blue",
    "riding",
    "kicking",
    "playing",
    "next",
    "to",
}


@cache
def _inventory() -> tuple[str, ...]:
    """Everything a caption can name, longest first (class phrases, groups, people, places)."""
    items: set[str] = set()
    for c in range(ic.NUM_CLASSES):
        items.add(re.sub(r"^(a|an) ", "", ic.phrase(c).lower()))
        hypernym = ic.group_of()[c].hypernym
        if hypernym:
            items.add(re.sub(r"^(a|an|some) ", "", hypernym.lower()))
    items |= {"person", "people", "cats", "grass", "water", "sky", "room", "table"}
    return tuple(sorted(items, key=lambda s: (-len(s), s)))


def named_things(caption: str) -> list[str]:
    """The things `caption` names, as phrases of the captioner's inventory, in order."""
    text = " " + " ".join(re.sub(r"[.,!?;:]", " ", caption.lower()).split()) + " "
    found: list[tuple[int, str]] = []
    for item in _inventory():
        pattern = f" {item} "
        start = text.find(pattern)
        while start >= 0:
            found.append((start, item))
            text = text[:start] + " " + "#" * len(item) + " " + text[start + len(pattern) :]
            start = text.find(pattern)
    return [item for _, item in sorted(found)]


def supported(item: str, present: Iterable[str]) -> bool:
    """Whether a named thing is among a photo's `present` words: one of its naming words
    (not framing) is a present word, or a present phrase is inside it."""
    present = [p.lower() for p in present]
    words = [w for w in item.split() if w not in _FRAMING]
    return any(w in present for w in words) or any(f" {p} " in f" {item} " for p in present)
