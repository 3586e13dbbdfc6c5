"""The prompt step: a caption becomes an opening a text model can continue coherently.

A char-LSTM trained on the King James Bible has never seen "a dog on a skateboard"
as a first line; fed that, its first sentences are noise. So the caption is framed
in the register of the model's corpus (a verse, a screenplay scene heading, a tale),
in the model's language:

* language: English captions feed English models as they are; French models get a
  word-by-word rendering through a small caption glossary (articles agreed with the
  noun, colour adjectives after it); words it lacks stay as they are.
* style: `auto` picks from the model card's corpus (Bible -> verse, scripts ->
  screenplay, anything else -> tale); `verse`, `screenplay`, `tale` and `plain`
  (the caption alone) can be asked for.

The prompt is sent as built: textgen-service owns each model's alphabet and fits the
prompt to it, and its answer says what the model read. The one thing the layout asks of
the model is the newline (a screenplay heading's blank line), which /v1/models publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from talkative_common.generation_schema import ModelInfo
from talkative_common.text import collapse_spaces, fold_typography

Style = Literal["auto", "verse", "screenplay", "tale", "plain"]
STYLES: tuple[str, ...] = ("auto", "verse", "screenplay", "tale", "plain")


@dataclass(frozen=True)
class ModelProfile:
    """What the prompt step needs to know about a text model."""

    name: str
    language: str
    corpus: str  # name and source of the training corpus, lower case
    newlines: bool = True  # the model reads "\n" (a byte-level model reads anything)


@dataclass(frozen=True)
class Prompt:
    text: str
    style: str
    language: str
    translated: bool  # the caption was rendered in the model's language


def auto_style(profile: ModelProfile) -> str:
    corpus = profile.corpus
    if any(w in corpus for w in ("bible", "kjv", "segond", "darby", "scripture")):
        return "verse"
    if any(w in corpus for w in ("script", "screenplay", "movie", "film", "shakespeare", "play")):
        return "screenplay"
    return "tale"


# --- caption clean-up -------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")


def tidy_caption(caption: str) -> str:
    """'  A dog on a  skateboard .' -> 'a dog on a skateboard' (no final stop, one space)."""
    text = collapse_spaces(fold_typography(caption).replace("\n", " ")).strip(" .")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return text


# --- French rendering ---------------------------------------------------------------------------

# fmt: off
# noun -> (French, gender). The words image captions use most (COCO's frequent nouns).
NOUNS: dict[str, tuple[str, str]] = {
    "man": ("homme", "m"), "men": ("hommes", "p"), "woman": ("femme", "f"),
    "women": ("femmes", "p"), "person": ("personne", "f"), "people": ("gens", "p"),
    "boy": ("garçon", "m"), "girl": ("fille", "f"), "child": ("enfant", "m"),
    "children": ("enfants", "p"), "baby": ("bébé", "m"), "king": ("roi", "m"),
    "dog": ("chien", "m"), "dogs": ("chiens", "p"), "cat": ("chat", "m"), "cats": ("chats", "p"),
    "horse": ("cheval", "m"), "horses": ("chevaux", "p"), "bird": ("oiseau", "m"),
    "birds": ("oiseaux", "p"), "cow": ("vache", "f"), "cows": ("vaches", "p"),
    "sheep": ("brebis", "f"), "elephant": ("éléphant", "m"), "giraffe": ("girafe", "f"),
    "zebra": ("zèbre", "m"), "bear": ("ours", "m"), "fish": ("poisson", "m"),
    "car": ("voiture", "f"), "bus": ("autobus", "m"), "train": ("train", "m"),
    "truck": ("camion", "m"), "boat": ("bateau", "m"), "plane": ("avion", "m"),
    "airplane": ("avion", "m"), "bicycle": ("bicyclette", "f"), "bike": ("vélo", "m"),
    "motorcycle": ("moto", "f"), "street": ("rue", "f"), "road": ("route", "f"),
    "city": ("ville", "f"), "house": ("maison", "f"), "building": ("bâtiment", "m"),
    "room": ("chambre", "f"), "kitchen": ("cuisine", "f"), "table": ("table", "f"),
    "bed": ("lit", "m"), "chair": ("chaise", "f"), "window": ("fenêtre", "f"),
    "door": ("porte", "f"), "field": ("champ", "m"), "grass": ("herbe", "f"),
    "tree": ("arbre", "m"), "trees": ("arbres", "p"), "flower": ("fleur", "f"),
    "flowers": ("fleurs", "p"), "water": ("eau", "f"), "sea": ("mer", "f"),
    "ocean": ("océan", "m"), "beach": ("plage", "f"), "river": ("fleuve", "m"),
    "lake": ("lac", "m"), "mountain": ("montagne", "f"), "mountains": ("montagnes", "p"),
    "hill": ("colline", "f"), "snow": ("neige", "f"), "sky": ("ciel", "m"), "sun": ("soleil", "m"),
    "wave": ("vague", "f"), "rock": ("rocher", "m"), "stone": ("pierre", "f"),
    "food": ("nourriture", "f"), "bread": ("pain", "m"), "plate": ("assiette", "f"),
    "cup": ("tasse", "f"), "bowl": ("bol", "m"), "pizza": ("pizza", "f"), "cake": ("gâteau", "m"),
    "fruit": ("fruit", "m"), "wine": ("vin", "m"), "book": ("livre", "m"), "hat": ("chapeau", "m"),
    "shirt": ("chemise", "f"), "suit": ("costume", "m"), "uniform": ("uniforme", "m"),
    "rocket": ("fusée", "f"), "astronaut": ("astronaute", "m"), "flag": ("drapeau", "m"),
    "coffee": ("café", "m"), "picture": ("image", "f"), "photo": ("photo", "f"),
    "face": ("visage", "m"), "hand": ("main", "f"), "group": ("groupe", "m"),
    "park": ("parc", "m"), "garden": ("jardin", "m"), "forest": ("forêt", "f"),
    "night": ("nuit", "f"), "day": ("jour", "m"), "fire": ("feu", "m"), "light": ("lumière", "f"),
    "ball": ("balle", "f"), "game": ("jeu", "m"), "kite": ("cerf-volant", "m"),
    "surfboard": ("planche", "f"), "skateboard": ("planche", "f"), "umbrella": ("parapluie", "m"),
    "clock": ("horloge", "f"), "tower": ("tour", "f"), "church": ("église", "f"),
    "bridge": ("pont", "m"), "wall": ("mur", "m"), "top": ("sommet", "m"), "side": ("bord", "m"),
    "front": ("devant", "m"), "middle": ("milieu", "m"), "animal": ("animal", "m"),
    "animals": ("animaux", "p"), "vase": ("vase", "m"), "mug": ("tasse", "f"),
    "glasses": ("lunettes", "p"), "tie": ("cravate", "f"), "woods": ("bois", "p"),
    # The default captioner's group words (serving/models/captioner, ImageNet classes).
    "close-up": ("gros plan", "m"), "view": ("vue", "f"), "vehicle": ("véhicule", "m"),
    "moped": ("mobylette", "f"), "scooter": ("scooter", "m"), "tripod": ("trépied", "m"),
    "camera": ("appareil photo", "m"), "daisy": ("marguerite", "f"), "palace": ("palais", "m"),
    "landscape": ("paysage", "m"), "insect": ("insecte", "m"), "butterfly": ("papillon", "m"),
    "snake": ("serpent", "m"), "lizard": ("lézard", "m"), "turtle": ("tortue", "f"),
    "crocodile": ("crocodile", "m"), "monkey": ("singe", "m"), "ape": ("grand singe", "m"),
    "lemur": ("lémurien", "m"), "panda": ("panda", "m"), "rabbit": ("lapin", "m"),
    "fox": ("renard", "m"), "wolf": ("loup", "m"), "spider": ("araignée", "f"),
    "crab": ("crabe", "m"), "lobster": ("homard", "m"), "mushroom": ("champignon", "m"),
    "drink": ("boisson", "f"), "vegetables": ("légumes", "p"), "amphibian": ("amphibien", "m"),
    "aircraft": ("avion", "m"), "instrument": ("instrument", "m"), "daisies": ("marguerites", "p"),
    "sea_creature": ("créature marine", "f"), "sea_mammal": ("mammifère marin", "m"),
    "big_cat": ("grand félin", "m"), "wild_dog": ("chien sauvage", "m"),
    "piece_of_furniture": ("meuble", "m"), "missile": ("missile", "m"),
}
# adjective -> (masculine, feminine); placed after the noun in French.
ADJECTIVES: dict[str, tuple[str, str]] = {
    "red": ("rouge", "rouge"), "blue": ("bleu", "bleue"), "green": ("vert", "verte"),
    "yellow": ("jaune", "jaune"), "white": ("blanc", "blanche"), "black": ("noir", "noire"),
    "brown": ("brun", "brune"), "grey": ("gris", "grise"), "gray": ("gris", "grise"),
    "orange": ("orange", "orange"), "pink": ("rose", "rose"), "purple": ("violet", "violette"),
    "dark": ("sombre", "sombre"), "bright": ("clair", "claire"), "old": ("vieux", "vieille"),
    "young": ("jeune", "jeune"), "small": ("petit", "petite"), "little": ("petit", "petite"),
    "large": ("grand", "grande"), "big": ("grand", "grande"), "tall": ("haut", "haute"),
    "empty": ("vide", "vide"), "wooden": ("de bois", "de bois"), "busy": ("animé", "animée"),
    "snowy": ("enneigé", "enneigée"), "grassy": ("herbeux", "herbeuse"),
    "sandy": ("de sable", "de sable"), "tabby": ("tigré", "tigrée"),
    "espresso": ("expresso", "expresso"), "musical": ("de musique", "de musique"),
    "military": ("militaire", "militaire"),
}
WORDS: dict[str, str] = {
    "on": "sur", "in": "dans", "at": "à", "with": "avec", "of": "de", "under": "sous",
    "near": "près de", "next": "à côté", "to": "à", "by": "près de", "behind": "derrière",
    "over": "au-dessus de", "and": "et", "is": "est", "are": "sont", "while": "tandis que",
    "two": "deux", "three": "trois", "four": "quatre", "several": "plusieurs",
    "some": "quelques", "many": "beaucoup de", "front": "devant", "top": "sommet",
    "riding": "qui monte", "sitting": "assis", "standing": "debout", "walking": "qui marche",
    "holding": "qui tient", "eating": "qui mange", "playing": "qui joue",
    "looking": "qui regarde", "flying": "qui vole", "laying": "couché", "lying": "couché",
    "running": "qui court", "wearing": "qui porte", "carrying": "qui porte",
    "driving": "qui conduit", "parked": "garé", "filled": "rempli", "covered": "couvert",
    "in_front_of": "devant", "on_top_of": "sur", "next_to": "à côté de",
    "close_to": "près de", "a_couple_of": "deux", "a_lot_of": "beaucoup de",
    "smiling": "qui sourit", "sleeping": "qui dort", "there": "là", "it": "il",
    "skiing": "qui skie", "for": "pour", "ready": "prêt",
}
# fmt: on
# Verb forms after a plural subject, and participles agreed with the last noun (m, f, p).
PLURAL_VERBS = {
    "monte": "montent",
    "marche": "marchent",
    "tient": "tiennent",
    "mange": "mangent",
    "joue": "jouent",
    "regarde": "regardent",
    "vole": "volent",
    "court": "courent",
    "porte": "portent",
    "conduit": "conduisent",
    "sourit": "sourient",
    "dort": "dorment",
}
PARTICIPLES = {
    "assis": ("assis", "assise", "assis"),
    "couché": ("couché", "couchée", "couchés"),
    "garé": ("garé", "garée", "garés"),
    "rempli": ("rempli", "remplie", "remplis"),
    "couvert": ("couvert", "couverte", "couverts"),
}
ARTICLES = {"a": ("un", "une", "des"), "an": ("un", "une", "des"), "the": ("le", "la", "les")}
_VOWEL = tuple("aeiouhéèêâîôû")
# Multi-word English phrases, joined into one token the glossary knows.
PHRASES = {
    "in front of": "in_front_of",
    "on top of": "on_top_of",
    "next to": "next_to",
    "close to": "close_to",
    "a couple of": "a_couple_of",
    "a lot of": "a_lot_of",
    "sea creature": "sea_creature",
    "sea mammal": "sea_mammal",
    "big cat": "big_cat",
    "wild dog": "wild_dog",
    "piece of furniture": "piece_of_furniture",
}
NUMBERS = {"a_couple_of", "a_lot_of", "two", "three", "four", "several", "some", "many"}


def to_french(caption: str) -> tuple[str, bool]:
    """Render an English caption in French; returns (text, every word was known)."""
    text = f" {caption.lower()} "
    for phrase, token in PHRASES.items():
        text = text.replace(f" {phrase} ", f" {token} ")
    words = text.split()
    out: list[str] = []
    complete = True
    gender = "m"  # of the last noun, for the participles and verbs that follow it
    i = 0
    while i < len(words):
        word = words[i]
        if word in ARTICLES or word in ADJECTIVES or word in NOUNS:
            # [article] [adjective]* noun -> article noun adjective*, agreed with the noun.
            j = i + (word in ARTICLES)
            adjs = []
            while j < len(words) and words[j] in ADJECTIVES and words[j] not in NOUNS:
                adjs.append(words[j])
                j += 1
            if j < len(words) and words[j] in NOUNS:
                noun, gender = NOUNS[words[j]]
                if i and words[i - 1] in NUMBERS:
                    gender = "p"
                parts = []
                if word in ARTICLES:
                    article = ARTICLES[word][{"m": 0, "f": 1, "p": 2}[gender]]
                    if article in ("le", "la") and noun.startswith(_VOWEL):
                        parts.append("l'" + noun)
                    else:
                        parts += [article, noun]
                else:
                    parts.append(noun)
                for adj in adjs:
                    masc, fem = ADJECTIVES[adj]
                    form = fem if gender == "f" else masc
                    parts.append(form + ("s" if gender == "p" and not form.endswith("s") else ""))
                out.append(" ".join(parts))
                i = j + 1
                continue
        if word in NUMBERS and i + 1 < len(words) and words[i + 1] in NOUNS:
            gender = "p"
        if word in ARTICLES:
            out.append(ARTICLES[word][0])
        elif word in ADJECTIVES:
            out.append(ADJECTIVES[word][0])
        elif word in WORDS:
            french = WORDS[word]
            if french in PARTICIPLES:
                french = PARTICIPLES[french]["mfp".index(gender)]
            elif french.startswith("qui ") and gender == "p":
                verb = french[4:]
                french = "qui " + PLURAL_VERBS.get(verb, verb)
            out.append(french)
        else:
            out.append(word)
            complete = complete and not word.isalpha()
        i += 1
    text = " ".join(out)
    # Elision and contraction: "de le" -> "du", "à le" -> "au", "de les" -> "des".
    contractions = {
        " de le ": " du ",
        " à le ": " au ",
        " de les ": " des ",
        " à les ": " aux ",
        " de un ": " d'un ",
        " de une ": " d'une ",
    }
    for before, after in contractions.items():
        text = f" {text} ".replace(before, after).strip()
    return text, complete


# --- templates ------------------------------------------------------------------------------------

INDOOR = {
    "room",
    "kitchen",
    "bathroom",
    "bedroom",
    "office",
    "restaurant",
    "house",
    "church",
    "table",
    "bed",
    "store",
    "shop",
    "living",
    "hall",
    "station",
    "museum",
    "library",
}
_PLACE = re.compile(
    r"\b(?:on|in|at|near|by|under|inside|beside)\s+(?:a|an|the|some)?\s*"
    r"((?:[a-z]+\s+)?[a-z]+)\s*$"
)


def scene_heading(caption: str, night: bool, language: str) -> str:
    """'a dog on a sandy beach' -> 'EXT. SANDY BEACH - DAY' (INT. for rooms and buildings)."""
    match = _PLACE.search(caption)
    place = match.group(1) if match else caption.split()[-1] if caption.split() else "street"
    indoor = any(w in INDOOR for w in place.split())
    if language == "fr":
        words = place.split()
        noun = NOUNS.get(words[-1], (words[-1], "m"))[0]
        rest = [ADJECTIVES.get(w, (w, w))[0] for w in words[:-1]]
        place = " ".join([noun, *rest])
        return f"{'INT' if indoor else 'EXT'}. {place.upper()} - {'NUIT' if night else 'JOUR'}"
    return f"{'INT' if indoor else 'EXT'}. {place.upper()} - {'NIGHT' if night else 'DAY'}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def frame(caption: str, style: str, language: str, heading: str) -> str:
    """The prompt in the model's register. It ends at a word or a mark, never a space:
    BPE reads a trailing space as a token of its own, and char models drop it."""
    if language == "fr":
        if style == "verse":
            return f"Et il arriva, comme ils regardaient, qu'ils virent {caption}; et voici,"
        if style == "screenplay":
            return f"{heading}\n\n{_sentence(caption)}."
        if style == "tale":
            return f"Il était une fois {caption}. Un jour,"
        return _sentence(caption) + "."
    if style == "verse":
        return f"And it came to pass, as they looked, that they saw {caption}; and, behold,"
    if style == "screenplay":
        return f"{heading}\n\n{_sentence(caption)}."
    if style == "tale":
        return f"Once upon a time there was {caption}. One day,"
    return _sentence(caption) + "."


def make_prompt(
    caption: str, profile: ModelProfile, style: str = "auto", *, night: bool = False
) -> Prompt:
    """Caption + model + style -> the prompt sent to textgen-service, which fits it."""
    chosen = auto_style(profile) if style == "auto" else style
    english = tidy_caption(caption) or "a picture"
    text, translated = english, False
    language = profile.language.split("-")[0].lower()
    if language == "fr":
        text, translated = to_french(english)
    elif language != "en":
        language = "en"  # no rendering for this language: frame in English, say so
    heading = scene_heading(english, night, language)
    framed = frame(text, chosen, language, heading)
    if not profile.newlines:
        framed = framed.replace("\n\n", ". ")  # a full stop ends the heading instead
    return Prompt(framed, chosen, language, translated)


def profile_from_model(info: ModelInfo) -> ModelProfile:
    """A textgen-service /v1/models entry -> ModelProfile."""
    corpus_info = info.card.get("training_corpus", {})
    corpus = " ".join(
        str(corpus_info.get(k, "")) for k in ("name", "source") if isinstance(corpus_info, dict)
    )
    return ModelProfile(
        name=info.name,
        language=info.language or "en",
        corpus=f"{corpus} {info.description}".lower(),
        newlines=info.alphabet is None or "\n" in info.alphabet,
    )


def word_count(text: str) -> int:
    return len(_WORD.findall(text))
