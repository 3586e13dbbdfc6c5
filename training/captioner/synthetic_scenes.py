"""Training pairs for the scene captioner: synthetic scene vectors and the teacher's captions.

Each scene is drawn as its parts: a main class (uniform over ImageNet) with a
posterior shaped like the encoder's (`synthetic.sample_posterior`); sometimes a
second, unrelated class whose region posterior goes through the same masking as
in the graph (`scene.SceneBuilder`), so that it is present exactly when the graph
would find it; face and body boxes (more often where the main class is clothing
or a sport, whose photos show people) and where the main subject lies against the
best of them (under, near or apart, as `scene.person_relation` reads the boxes), cat
faces (mostly over cats), and place evidence, one place clearly present or none,
through the graph's place gates (no grass under a gibbon, blue around a whale counted
as water). The teacher (`scene_captions.read`) then reads the vector as the graph's
output would be read, so the decoder learns the rule, not the sampler.
"""

from __future__ import annotations

import numpy as np

from training.captioner import imagenet_captions as ic
from training.captioner import scene as sc
from training.captioner import scene_captions as rules
from training.captioner import synthetic

SECOND_RATE = 0.4
PLACE_RATE = 0.45
# Share of scenes with 0, 1, 2, 3+ people: where the class shows people, and elsewhere.
PEOPLE_IF_PERSON_CLASS = (0.25, 0.55, 0.12, 0.08)
PEOPLE_OTHERWISE = (0.6, 0.25, 0.1, 0.05)
# Where the main subject lies against the best person box, when a person is counted:
# below, near, apart (scene.RELATIONS[1:]).
RELATION_SHARES = (0.3, 0.45, 0.25)
CATS_IF_CAT = (0.45, 0.35, 0.2)
CATS_OTHERWISE = (0.96, 0.03, 0.01)
GRASS, WATER, SKY = (sc.PLACES.index(k) for k in ("grass", "water", "sky"))


class SceneSampler:
    def __init__(self, table: synthetic.ClassTable) -> None:
        self.table = table
        # [1000, 1000]: the classes that may be a second subject beside each main class.
        self.allowed = ~sc.related_classes() & ~sc.never_second()[None, :]
        groups = ic.group_of()
        self.person_class = np.array(
            [groups[c].name in rules.PERSON_GROUPS for c in range(ic.NUM_CLASSES)]
        )
        self.cat_class = np.array([groups[c].name == "cat" for c in range(ic.NUM_CLASSES)])
        self.on_grass, self.water_animal = sc.place_gates()

    def vector(self, rng: np.random.Generator, main: int) -> np.ndarray:
        """One scene vector about `main` (layout: scene.py)."""
        out = np.zeros(sc.SCENE_DIM, np.float32)
        out[sc.MAIN] = synthetic.sample_posterior(rng, main, self.table)
        if rng.random() < SECOND_RATE:
            allowed = self.allowed[main]
            second = int(rng.choice(np.flatnonzero(allowed)))
            region = synthetic.sample_posterior(rng, second, self.table)
            # The graph's masking: the main class's relatives and landscapes removed.
            region = region * allowed
            strength = float(region.max())
            if strength >= sc.SECOND_MIN:
                out[sc.SECOND] = region / region.sum()
                out[sc.SECOND_STRENGTH] = strength
        shares = PEOPLE_IF_PERSON_CLASS if self.person_class[main] else PEOPLE_OTHERWISE
        people = int(rng.choice(4, p=shares))
        out[sc.PEOPLE.start + people] = 1.0
        relation = 0  # none: the graph reads no relation without a counted person
        if people:
            out[sc.PERSON_SCORE] = rng.uniform(sc.DETECTION_MIN, 1.0)
            relation = 1 + int(rng.choice(len(RELATION_SHARES), p=RELATION_SHARES))
        elif rng.random() < 0.2:
            out[sc.PERSON_SCORE] = rng.uniform(0.0, sc.DETECTION_MIN)  # a weak box, not counted
        out[sc.RELATION.start + relation] = 1.0
        cats = int(rng.choice(3, p=CATS_IF_CAT if self.cat_class[main] else CATS_OTHERWISE))
        out[sc.CATS.start + cats] = 1.0
        evidence = rng.uniform(0.0, 0.45, len(sc.PLACES)) * (rng.random(len(sc.PLACES)) < 0.5)
        if rng.random() < PLACE_RATE:
            evidence[rng.integers(len(sc.PLACES))] = rng.uniform(rules.PLACE_MIN, 1.0)
        # Gated by the posterior's top class, as the graph does (not always `main`).
        top = int(np.argmax(out[sc.MAIN]))
        evidence[GRASS], evidence[WATER], evidence[SKY] = sc.gate_places(
            evidence[GRASS],
            evidence[WATER],
            evidence[SKY],
            self.on_grass[top],
            self.water_animal[top],
        )
        out[sc.PLACE] = evidence
        return out

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[str]]:
        """`size` scenes about uniformly drawn main classes, with the teacher's captions."""
        vectors = np.stack([self.vector(rng, int(c)) for c in rng.integers(0, 1000, size)])
        captions = [rules.caption_for(rules.read(v, self.table), rng) for v in vectors]
        return vectors, captions
