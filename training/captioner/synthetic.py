"""Training pairs for the default captioner: plausible class posteriors and their captions.

With no captioned photos offline, the decoder learns from class-probability vectors
shaped like the encoder's real outputs: a long noisy tail, classes the classifier
confuses with the main one (its nearest neighbours by the cosine of their
classifier weights), and sometimes the mass split between several members of one
group, as when the encoder sees "a cat" but hesitates between tabby, tiger cat and
Egyptian Mau. A fixed teacher rule turns each vector into a caption: the top class
when the encoder is sure of it or no group phrase applies, the group's phrase
("a cat.") when the encoder hesitates between members of a group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.captioner import imagenet_captions as ic

# Teacher: a group phrase when the top class is below this probability...
HESITANT_BELOW = 0.5
# ...and its group holds this share of the five most probable classes' mass,
GROUP_SHARE = 0.6
# ...and clearly more than the top class alone.
GROUP_MARGIN = 0.1
# How often a sample splits its mass between members of one group on purpose.
SPREAD_RATE = 0.3
# The probability of each template, most usual first (renormalised to the count).
TEMPLATE_WEIGHTS = (0.6, 0.25, 0.15)


@dataclass(frozen=True)
class ClassTable:
    neighbours: np.ndarray  # int [1000, N]: classes most alike by classifier weights
    group_id: np.ndarray  # int [1000]: an id shared by classes with one group phrase, or -1
    members: tuple[np.ndarray, ...]  # per group id, its classes

    @classmethod
    def build(cls, classifier_weights: np.ndarray, n_neighbours: int = 20) -> ClassTable:
        """`classifier_weights`: the encoder's last Dense kernel, [features, 1000]."""
        w = classifier_weights / np.linalg.norm(classifier_weights, axis=0, keepdims=True)
        sim = w.T @ w
        np.fill_diagonal(sim, -np.inf)
        neighbours = np.argsort(-sim, axis=1)[:, :n_neighbours]
        groups = ic.group_of()
        phrases = sorted({g.hypernym for g in groups.values() if g.hypernym})
        ids = {p: i for i, p in enumerate(phrases)}
        group_id = np.array([ids.get(groups[c].hypernym or "", -1) for c in range(ic.NUM_CLASSES)])
        members = tuple(np.flatnonzero(group_id == i) for i in range(len(phrases)))
        return cls(neighbours, group_id, members)


def teacher(probs: np.ndarray, table: ClassTable) -> tuple[int, bool]:
    """(class the caption is about, whether to name its group rather than the class)."""
    top = int(np.argmax(probs))
    gid = table.group_id[top]
    if gid < 0 or probs[top] >= HESITANT_BELOW:
        return top, False
    top5 = float(np.sort(probs)[-5:].sum())
    group_mass = float(probs[table.members[gid]].sum())
    hesitant = group_mass >= GROUP_SHARE * top5 and group_mass >= probs[top] + GROUP_MARGIN
    return top, hesitant


def teacher_captions(index: int, use_group: bool) -> tuple[str, ...]:
    """The captions the teacher allows: the group's when asked and it has one, else the class's."""
    return (ic.hypernym_captions(index) if use_group else None) or ic.specific_captions(index)


def caption_for(index: int, use_group: bool, rng: np.random.Generator) -> str:
    options = teacher_captions(index, use_group)
    weights = np.array(TEMPLATE_WEIGHTS[: len(options)])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def sample_posterior(rng: np.random.Generator, main: int, table: ClassTable) -> np.ndarray:
    """One plausible encoder output (probabilities over the 1000 classes) about `main`."""
    n = ic.NUM_CLASSES
    logits = rng.normal(0.0, rng.uniform(0.5, 1.5), n)
    confusers = rng.choice(table.neighbours[main], size=rng.integers(0, 7), replace=False)
    logits[confusers] += rng.uniform(1.0, 4.0, len(confusers))
    gid = table.group_id[main]
    if gid >= 0 and len(table.members[gid]) > 1 and rng.random() < SPREAD_RATE:
        # Hesitation inside a group: prefer members the classifier finds alike.
        same = [c for c in table.neighbours[main] if table.group_id[c] == gid]
        pool = same if len(same) >= 2 else [c for c in table.members[gid] if c != main]
        k = min(len(pool), int(rng.integers(1, 4)))
        chosen = np.array([main, *rng.choice(pool, size=k, replace=False)])
        logits[chosen] = logits.max() + rng.uniform(1.0, 4.0) + rng.uniform(0.0, 1.0, len(chosen))
    else:
        logits[main] = logits.max() + rng.uniform(-0.3, 6.0)
    z = np.exp(logits - logits.max())
    return (z / z.sum()).astype(np.float32)


def sample_batch(
    rng: np.random.Generator, size: int, table: ClassTable
) -> tuple[np.ndarray, list[str]]:
    """`size` posteriors about uniformly drawn classes, with the teacher's captions."""
    probs = np.stack([sample_posterior(rng, int(c), table) for c in rng.integers(0, 1000, size)])
    captions = [caption_for(*teacher(p, table), rng) for p in probs]
    return probs, captions
