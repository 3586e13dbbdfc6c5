"""The prompt step: a caption becomes an opening a text model can continue coherently.

A char-LSTM trained on the King James Bible has never seen "a dog on a skateboard"
as a first line; fed that, its first sentences are noise. So the caption is framed
in the register of the model's corpus (a verse, a screenplay scene heading, a tale),
in the model's language:

* language: English captions feed English models as they are; French and Spanish
  models get a word-by-word rendering through a small caption glossary (articles agreed
  with the noun, colour adjectives after it); words it lacks stay as they are.
* style: for a model without style tokens, `auto` picks from the model card's corpus
  (Bible -> verse, scripts -> screenplay, anything else -> tale); `verse`,
  `screenplay`, `tale` and `plain` (the caption alone) can be asked for. A model
  trained with style tokens lists its genres (`styles` in /v1/models): then the
  styles are those genres (`auto` is the first), each with its own opening, and
  `plain`; the genre also goes to textgen-service, which prepends its token.

The prompt is sent as built: textgen-service owns each model's alphabet and fits the
prompt to it, and its answer says what the model read. The one thing the layout asks of
the model is the newline (a screenplay heading's blank line), which /v1/models publishes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from talkative_common.errors import InvalidInput
from talkative_common.generation_schema import ModelInfo
from talkative_common.text import collapse_spaces, fold_typography

Style = Literal["auto", "verse", "screenplay", "tale", "plain"]
STYLES: tuple[str, ...] = ("auto", "verse", "screenplay", "tale", "plain")
# The genres style-token models are trained with; each has an opening written for it.
GENRES: tuple[str, ...] = ("bible", "novel", "play")


@dataclass(frozen=True)
class ModelProfile:
    """What the prompt step needs to know about a text model."""

    name: str
    language: str
    corpus: str  # name and source of the training corpus, lower case
    newlines: bool = True  # the model reads "\n" (a byte-level model reads anything)
    styles: tuple[str, ...] = ()  # genres of a model trained with style tokens


@dataclass(frozen=True)
class Prompt:
    text: str
    style: str
    language: str
    translated: bool  # the caption was rendered in the model's language
    genre: str | None = None  # the style token textgen-service prepends (styled models)


def allowed_styles(profile: ModelProfile) -> tuple[str, ...]:
    """The styles a story may ask for with this model."""
    if profile.styles:
        return ("auto", *profile.styles, "plain")
    return STYLES


class UnknownStyle(InvalidInput):
    def __init__(self, style: str, profile: ModelProfile) -> None:
        allowed = ", ".join(allowed_styles(profile))
        super().__init__(
            f"{style!r} is not a style of {profile.name}; choose one of: {allowed}",
            field="style",
        )


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


# --- caption rendering ---------------------------------------------------------------------------

# Multi-word English phrases, joined into one token the glossaries know.
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


@dataclass(frozen=True)
class CaptionLanguage(ABC):
    """A target language's caption glossary and the few rules it does its own way.

    `render` holds the word order both languages share; a gender is one of `genders`,
    feminine ones start with "f" and plural ones end with "p".
    """

    nouns: Mapping[str, tuple[str, str]]  # English -> (translation, gender)
    adjectives: Mapping[str, tuple[str, str]]  # English -> (masculine, feminine)
    words: Mapping[str, str]  # everything else the glossary knows
    articles: Mapping[str, tuple[str, ...]]  # English -> one form per gender
    genders: tuple[str, ...]
    contractions: tuple[tuple[str, str], ...]  # applied in order to the rendered text

    def article(self, english: str, gender: str) -> str:
        return self.articles[english][self.genders.index(gender)]

    @abstractmethod
    def with_article(self, english: str, noun: str, gender: str) -> str:
        """The noun after its article ('the' + 'homme' -> "l'homme")."""

    @abstractmethod
    def counted(self, noun: str, gender: str) -> tuple[str, str]:
        """The noun and its gender after a number ('two', 'several', ...)."""

    @abstractmethod
    def plural(self, adjective: str) -> str:
        """An adjective agreed with a plural noun."""

    @abstractmethod
    def agree(self, word: str, gender: str) -> str:
        """A glossary word (a participle, a relative clause) agreed with the last noun."""

    def render(self, caption: str) -> tuple[str, bool]:
        """Render an English caption; returns (text, every word was known)."""
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
            if word in self.articles or word in self.adjectives or word in self.nouns:
                # [article] [adjective]* noun -> article noun adjective*, agreed with the noun.
                j = i + (word in self.articles)
                adjs = []
                while j < len(words) and words[j] in self.adjectives and words[j] not in self.nouns:
                    adjs.append(words[j])
                    j += 1
                if j < len(words) and words[j] in self.nouns:
                    noun, gender = self.nouns[words[j]]
                    if i and words[i - 1] in NUMBERS:
                        noun, gender = self.counted(noun, gender)
                    parts = [
                        self.with_article(word, noun, gender) if word in self.articles else noun
                    ]
                    for adj in adjs:
                        masc, fem = self.adjectives[adj]
                        form = fem if gender.startswith("f") else masc
                        parts.append(self.plural(form) if gender.endswith("p") else form)
                    out.append(" ".join(parts))
                    i = j + 1
                    continue
            if word in NUMBERS and i + 1 < len(words) and words[i + 1] in self.nouns:
                gender = self.counted(*self.nouns[words[i + 1]])[1]
            if word in self.articles:
                out.append(self.articles[word][0])
            elif word in self.adjectives:
                out.append(self.adjectives[word][0])
            elif word in self.words:
                out.append(self.agree(self.words[word], gender))
            else:
                out.append(word)
                complete = complete and not word.isalpha()
            i += 1
        text = f" {' '.join(out)} "
        for before, after in self.contractions:
            text = text.replace(before, after)
        return text.strip(), complete


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


class French(CaptionLanguage):
    def with_article(self, english: str, noun: str, gender: str) -> str:
        article = self.article(english, gender)
        if article in ("le", "la") and noun.startswith(_VOWEL):
            return "l'" + noun  # elision
        return f"{article} {noun}"

    def counted(self, noun: str, gender: str) -> tuple[str, str]:
        return noun, "p"  # only the agreement turns plural; the noun stays as glossed

    def plural(self, adjective: str) -> str:
        return adjective if adjective.endswith("s") else adjective + "s"

    def agree(self, word: str, gender: str) -> str:
        if word in PARTICIPLES:
            return PARTICIPLES[word]["mfp".index(gender)]
        if word.startswith("qui ") and gender == "p":
            verb = word[4:]
            return "qui " + PLURAL_VERBS.get(verb, verb)
        return word


FRENCH = French(
    NOUNS,
    ADJECTIVES,
    WORDS,
    ARTICLES,
    genders=("m", "f", "p"),
    # Elision and contraction: "de le" -> "du", "à le" -> "au", "de les" -> "des".
    contractions=(
        (" de le ", " du "),
        (" à le ", " au "),
        (" de les ", " des "),
        (" à les ", " aux "),
        (" de un ", " d'un "),
        (" de une ", " d'une "),
    ),
)


def to_french(caption: str) -> tuple[str, bool]:
    """Render an English caption in French; returns (text, every word was known)."""
    return FRENCH.render(caption)


# --- Spanish rendering --------------------------------------------------------------------------

# fmt: off
# noun -> (Spanish, gender and number: m, f, mp, fp). The same caption words as in French.
NOUNS_ES: dict[str, tuple[str, str]] = {
    "man": ("hombre", "m"), "men": ("hombres", "mp"), "woman": ("mujer", "f"),
    "women": ("mujeres", "fp"), "person": ("persona", "f"), "people": ("personas", "fp"),
    "boy": ("niño", "m"), "girl": ("niña", "f"), "child": ("niño", "m"),
    "children": ("niños", "mp"), "baby": ("bebé", "m"), "king": ("rey", "m"),
    "dog": ("perro", "m"), "dogs": ("perros", "mp"), "cat": ("gato", "m"), "cats": ("gatos", "mp"),
    "horse": ("caballo", "m"), "horses": ("caballos", "mp"), "bird": ("pájaro", "m"),
    "birds": ("pájaros", "mp"), "cow": ("vaca", "f"), "cows": ("vacas", "fp"),
    "sheep": ("oveja", "f"), "elephant": ("elefante", "m"), "giraffe": ("jirafa", "f"),
    "zebra": ("cebra", "f"), "bear": ("oso", "m"), "fish": ("pez", "m"),
    "car": ("coche", "m"), "bus": ("autobús", "m"), "train": ("tren", "m"),
    "truck": ("camión", "m"), "boat": ("barco", "m"), "plane": ("avión", "m"),
    "airplane": ("avión", "m"), "bicycle": ("bicicleta", "f"), "bike": ("bicicleta", "f"),
    "motorcycle": ("moto", "f"), "street": ("calle", "f"), "road": ("carretera", "f"),
    "city": ("ciudad", "f"), "house": ("casa", "f"), "building": ("edificio", "m"),
    "room": ("habitación", "f"), "kitchen": ("cocina", "f"), "table": ("mesa", "f"),
    "bed": ("cama", "f"), "chair": ("silla", "f"), "window": ("ventana", "f"),
    "door": ("puerta", "f"), "field": ("campo", "m"), "grass": ("hierba", "f"),
    "tree": ("árbol", "m"), "trees": ("árboles", "mp"), "flower": ("flor", "f"),
    "flowers": ("flores", "fp"), "water": ("agua", "f"), "sea": ("mar", "m"),
    "ocean": ("océano", "m"), "beach": ("playa", "f"), "river": ("río", "m"),
    "lake": ("lago", "m"), "mountain": ("montaña", "f"), "mountains": ("montañas", "fp"),
    "hill": ("colina", "f"), "snow": ("nieve", "f"), "sky": ("cielo", "m"), "sun": ("sol", "m"),
    "wave": ("ola", "f"), "rock": ("roca", "f"), "stone": ("piedra", "f"),
    "food": ("comida", "f"), "bread": ("pan", "m"), "plate": ("plato", "m"),
    "cup": ("taza", "f"), "bowl": ("cuenco", "m"), "pizza": ("pizza", "f"), "cake": ("pastel", "m"),
    "fruit": ("fruta", "f"), "wine": ("vino", "m"), "book": ("libro", "m"),
    "hat": ("sombrero", "m"),
    "shirt": ("camisa", "f"), "suit": ("traje", "m"), "uniform": ("uniforme", "m"),
    "rocket": ("cohete", "m"), "astronaut": ("astronauta", "m"), "flag": ("bandera", "f"),
    "coffee": ("café", "m"), "picture": ("imagen", "f"), "photo": ("foto", "f"),
    "face": ("cara", "f"), "hand": ("mano", "f"), "group": ("grupo", "m"),
    "park": ("parque", "m"), "garden": ("jardín", "m"), "forest": ("bosque", "m"),
    "night": ("noche", "f"), "day": ("día", "m"), "fire": ("fuego", "m"), "light": ("luz", "f"),
    "ball": ("pelota", "f"), "game": ("juego", "m"), "kite": ("cometa", "f"),
    "surfboard": ("tabla de surf", "f"), "skateboard": ("monopatín", "m"),
    "umbrella": ("paraguas", "m"), "clock": ("reloj", "m"), "tower": ("torre", "f"),
    "church": ("iglesia", "f"), "bridge": ("puente", "m"), "wall": ("muro", "m"),
    "top": ("cima", "f"), "side": ("borde", "m"), "front": ("frente", "m"),
    "middle": ("medio", "m"), "animal": ("animal", "m"), "animals": ("animales", "mp"),
    "vase": ("jarrón", "m"), "mug": ("taza", "f"), "glasses": ("gafas", "fp"),
    "tie": ("corbata", "f"), "woods": ("bosque", "m"),
    # The default captioner's group words (serving/models/captioner, ImageNet classes).
    "close-up": ("primer plano", "m"), "view": ("vista", "f"), "vehicle": ("vehículo", "m"),
    "moped": ("ciclomotor", "m"), "scooter": ("escúter", "m"), "tripod": ("trípode", "m"),
    "camera": ("cámara", "f"), "daisy": ("margarita", "f"), "palace": ("palacio", "m"),
    "landscape": ("paisaje", "m"), "insect": ("insecto", "m"), "butterfly": ("mariposa", "f"),
    "snake": ("serpiente", "f"), "lizard": ("lagarto", "m"), "turtle": ("tortuga", "f"),
    "crocodile": ("cocodrilo", "m"), "monkey": ("mono", "m"), "ape": ("simio", "m"),
    "lemur": ("lémur", "m"), "panda": ("panda", "m"), "rabbit": ("conejo", "m"),
    "fox": ("zorro", "m"), "wolf": ("lobo", "m"), "spider": ("araña", "f"),
    "crab": ("cangrejo", "m"), "lobster": ("langosta", "f"), "mushroom": ("seta", "f"),
    "drink": ("bebida", "f"), "vegetables": ("verduras", "fp"), "amphibian": ("anfibio", "m"),
    "aircraft": ("avión", "m"), "instrument": ("instrumento", "m"),
    "daisies": ("margaritas", "fp"), "sea_creature": ("criatura marina", "f"),
    "sea_mammal": ("mamífero marino", "m"), "big_cat": ("gran felino", "m"),
    "wild_dog": ("perro salvaje", "m"), "piece_of_furniture": ("mueble", "m"),
    "missile": ("misil", "m"),
}
# adjective -> (masculine, feminine); placed after the noun in Spanish.
ADJECTIVES_ES: dict[str, tuple[str, str]] = {
    "red": ("rojo", "roja"), "blue": ("azul", "azul"), "green": ("verde", "verde"),
    "yellow": ("amarillo", "amarilla"), "white": ("blanco", "blanca"),
    "black": ("negro", "negra"), "brown": ("marrón", "marrón"), "grey": ("gris", "gris"),
    "gray": ("gris", "gris"), "orange": ("naranja", "naranja"), "pink": ("rosa", "rosa"),
    "purple": ("morado", "morada"), "dark": ("oscuro", "oscura"), "bright": ("claro", "clara"),
    "old": ("viejo", "vieja"), "young": ("joven", "joven"), "small": ("pequeño", "pequeña"),
    "little": ("pequeño", "pequeña"), "large": ("grande", "grande"), "big": ("grande", "grande"),
    "tall": ("alto", "alta"), "empty": ("vacío", "vacía"), "wooden": ("de madera", "de madera"),
    "busy": ("concurrido", "concurrida"), "snowy": ("nevado", "nevada"),
    "grassy": ("herboso", "herbosa"), "sandy": ("de arena", "de arena"),
    "tabby": ("atigrado", "atigrada"), "espresso": ("expreso", "expreso"),
    "musical": ("musical", "musical"), "military": ("militar", "militar"),
}
WORDS_ES: dict[str, str] = {
    "on": "en", "in": "en", "at": "en", "with": "con", "of": "de", "under": "debajo de",
    "near": "cerca de", "next": "al lado", "to": "a", "by": "junto a", "behind": "detrás de",
    "over": "sobre", "and": "y", "is": "está", "are": "están", "while": "mientras",
    "two": "dos", "three": "tres", "four": "cuatro", "several": "varios",
    "some": "algunos", "many": "muchos", "front": "frente", "top": "cima",
    "riding": "que monta", "sitting": "sentado", "standing": "de pie",
    "walking": "que camina", "holding": "que sostiene", "eating": "que come",
    "playing": "que juega", "looking": "que mira", "flying": "que vuela",
    "laying": "acostado", "lying": "acostado", "running": "que corre",
    "wearing": "que lleva", "carrying": "que lleva", "driving": "que conduce",
    "parked": "aparcado", "filled": "lleno", "covered": "cubierto",
    "in_front_of": "delante de", "on_top_of": "encima de", "next_to": "al lado de",
    "close_to": "cerca de", "a_couple_of": "dos", "a_lot_of": "muchos",
    "smiling": "que sonríe", "sleeping": "que duerme", "there": "allí", "it": "ello",
    "skiing": "que esquía", "for": "para", "ready": "listo",
}
# fmt: on
# Participles agreed with the last noun: -o, -a, -os, -as.
PARTICIPLES_ES = {"sentado", "acostado", "aparcado", "lleno", "cubierto", "listo"}
ARTICLES_ES = {
    "a": ("un", "una", "unos", "unas"),
    "an": ("un", "una", "unos", "unas"),
    "the": ("el", "la", "los", "las"),
}
# Plurals the -s / -es rule gets wrong (accents that move, -z -> -ces, invariable words).
PLURALS_ES = {
    "pez": "peces",
    "luz": "luces",
    "joven": "jóvenes",
    "imagen": "imágenes",
    "paraguas": "paraguas",
    "gran felino": "grandes felinos",
    "primer plano": "primeros planos",
}
_ACCENTED = str.maketrans("áéíóú", "aeiou")


def plural_es(word: str) -> str:
    """'perro' -> 'perros', 'camión' -> 'camiones', 'tabla de surf' -> 'tablas de surf'."""
    if word in PLURALS_ES:
        return PLURALS_ES[word]
    if word.startswith("de "):
        return word  # "de madera" stays as it is
    head, sep, tail = word.partition(" ")
    if sep and not tail.startswith("de "):
        return f"{plural_es(head)} {plural_es(tail)}"  # "perro salvaje" -> "perros salvajes"
    if head.endswith(tuple("aeiouéá")):
        head += "s"
    elif head[-2:] in ("ón", "ín", "ús", "és"):
        head = head[:-2] + head[-2:].translate(_ACCENTED) + "es"  # the stress moves back
    else:
        head += "es"
    return head + sep + tail


class Spanish(CaptionLanguage):
    def with_article(self, english: str, noun: str, gender: str) -> str:
        # "el agua": a stressed a- takes the masculine singular article.
        return f"{self.article(english, 'm' if noun == 'agua' else gender)} {noun}"

    def counted(self, noun: str, gender: str) -> tuple[str, str]:
        if gender.endswith("p"):
            return noun, gender
        return plural_es(noun), gender + "p"  # "two sheep" -> "dos ovejas"

    def plural(self, adjective: str) -> str:
        return plural_es(adjective)

    def agree(self, word: str, gender: str) -> str:
        if word in PARTICIPLES_ES:  # -o, -a, -os, -as
            stem = word[:-1]
            return {"m": word, "f": stem + "a", "mp": word + "s", "fp": stem + "as"}[gender]
        if word.startswith("que ") and gender.endswith("p"):
            return word + "n"  # "que monta" -> "que montan"
        return word


SPANISH = Spanish(
    NOUNS_ES,
    ADJECTIVES_ES,
    WORDS_ES,
    ARTICLES_ES,
    genders=("m", "f", "mp", "fp"),
    contractions=((" de el ", " del "), (" a el ", " al ")),
)


def to_spanish(caption: str) -> tuple[str, bool]:
    """Render an English caption in Spanish; returns (text, every word was known)."""
    return SPANISH.render(caption)


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
    if language == "es":
        place = to_spanish(place)[0]
        return f"{'INT' if indoor else 'EXT'}. {place.upper()} - {'NOCHE' if night else 'DÍA'}"
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
    if language == "es":
        if style == "verse":
            return f"Y aconteció que, mientras miraban, vieron {caption}; y he aquí,"
        if style == "screenplay":
            return f"{heading}\n\n{_sentence(caption)}."
        if style == "tale":
            return f"Érase una vez {caption}. Un día,"
        return _sentence(caption) + "."
    if style == "verse":
        return f"And it came to pass, as they looked, that they saw {caption}; and, behold,"
    if style == "screenplay":
        return f"{heading}\n\n{_sentence(caption)}."
    if style == "tale":
        return f"Once upon a time there was {caption}. One day,"
    return _sentence(caption) + "."


# --- genre openings (models trained with style tokens) ---------------------------------------

Render = Callable[[str], tuple[str, bool]]
RENDER: dict[str, Render] = {"fr": to_french, "es": to_spanish}

# A novel's first line, by day and by night; it ends mid-sentence for the model to go on.
NOVEL: dict[str, tuple[str, str]] = {
    "en": (
        "It was a quiet morning in early spring when I first saw {caption}, and",
        "It was a quiet night in early spring when I first saw {caption}, and",
    ),
    "fr": (
        "C'était un matin tranquille du début du printemps quand je vis pour la première "
        "fois {caption}, et",
        "C'était une nuit tranquille du début du printemps quand je vis pour la première "
        "fois {caption}, et",
    ),
    "es": (
        "Era una mañana tranquila de principios de primavera cuando vi por primera vez "
        "{caption}, y",
        "Era una noche tranquila de principios de primavera cuando vi por primera vez {caption}, y",
    ),
}
# A play's scene heading: (act and scene, "Enter" for one, for several, the night).
PLAY: dict[str, tuple[str, str, str, str]] = {
    "en": ("ACT I. SCENE I.", "Enter", "Enter", "Night."),
    "fr": ("ACTE I. SCÈNE I.", "Entre", "Entrent", "La nuit."),
    "es": ("ACTO I. ESCENA I.", "Entra", "Entran", "Es de noche."),
}
# First words of a rendered plural subject: French and Spanish "Enter" agrees with it.
_PLURAL_START = {
    "des", "les", "deux", "trois", "quatre", "plusieurs", "quelques", "beaucoup",
    "unos", "unas", "los", "las", "dos", "tres", "cuatro", "varios", "algunos", "muchos",
}  # fmt: skip
_SCENE = re.compile(
    r"^(?P<who>.+?)\s+(?:on|in|at|near|by|under|inside|beside)\s+"
    r"(?P<where>(?:(?:a|an|the|some)\s+)?(?:[a-z]+\s+)?[a-z]+)$"
)


def play_opening(caption: str, night: bool, language: str) -> str:
    """'a man riding a horse on a sandy beach' ->
    'ACT I. SCENE I. A sandy beach.\\n\\nEnter a man riding a horse.'"""
    act, enter_one, enter_many, dark = PLAY[language]
    render = RENDER.get(language, lambda text: (text, True))
    match = _SCENE.search(caption)
    who, where = (match["who"], match["where"]) if match else (caption, "")
    heading = (
        act + (f" {_sentence(render(where)[0])}." if where else "") + (f" {dark}" if night else "")
    )
    cast = render(who)[0]
    enter = enter_many if cast.split()[:1] and cast.split()[0] in _PLURAL_START else enter_one
    return f"{heading}\n\n{enter} {cast}."


def genre_frame(english: str, text: str, genre: str, language: str, night: bool) -> str:
    """The opening written for a genre; `text` is the caption in the model's language."""
    if genre == "bible":
        return frame(text, "verse", language, "")
    if genre == "novel":
        return NOVEL[language][night].format(caption=text)
    if genre == "play":
        return play_opening(english, night, language)
    return _sentence(text) + "."  # plain, or a genre with no opening written for it yet


def make_prompt(
    caption: str, profile: ModelProfile, style: str = "auto", *, night: bool = False
) -> Prompt:
    """Caption + model + style -> the prompt sent to textgen-service, which fits it."""
    if style not in allowed_styles(profile):
        raise UnknownStyle(style, profile)
    if profile.styles:
        chosen = profile.styles[0] if style == "auto" else style
    else:
        chosen = auto_style(profile) if style == "auto" else style
    english = tidy_caption(caption) or "a picture"
    text, translated = english, False
    language = profile.language.split("-")[0].lower()
    if language in RENDER:
        text, translated = RENDER[language](english)
    elif language != "en":
        language = "en"  # no rendering for this language: frame in English, say so
    if profile.styles:
        framed = genre_frame(english, text, chosen, language, night)
    else:
        heading = scene_heading(english, night, language)
        framed = frame(text, chosen, language, heading)
    if not profile.newlines:
        # A full stop ends the heading instead (a play's heading has one already).
        framed = framed.replace(".\n\n", ". ").replace("\n\n", ". ")
    # The genre goes to textgen-service as the style token; `plain` names none.
    genre = chosen if profile.styles and chosen != "plain" else None
    return Prompt(framed, chosen, language, translated, genre)


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
        styles=tuple(info.styles),
    )


def word_count(text: str) -> int:
    return len(_WORD.findall(text))
