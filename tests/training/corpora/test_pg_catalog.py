"""pg_catalog.csv and rdf-files.tar.bz2, and selection."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.training.corpora import gutenberg_mirror as gm
from training.corpora.gutindex import parse_gutindex
from training.corpora.pg_catalog import (
    CatalogError,
    author_names,
    parse_csv,
    parse_rdf,
    read_csv,
    read_rdf_tar,
    select,
)


def csv_books():
    return list(parse_csv(io.StringIO(gm.catalog_csv(), newline="")))


def test_csv_keeps_only_texts_and_splits_lists():
    books = {b.id: b for b in csv_books()}
    assert 20000 not in books  # the audio book
    assert set(books) == {b.id for b in gm.BOOKS}
    assert books[4650].title == "Candide: ou l'optimisme"  # two-line title in its quotes
    assert books[13951].subjects[:2] == (
        "Historical fiction",
        "France -- History -- Louis XIII, 1610-1643 -- Fiction",
    )
    assert books[135].languages == ("fr",)


def test_csv_multiple_languages_and_authors(tmp_path: Path):
    path = tmp_path / "pg_catalog.csv"
    path.write_text(
        "\ufeffText#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves\n"
        '7,Text,1994-01-01,"Petit guide\nbilingue",en; fr,"A, B; C, D",X,PE,\n',
        encoding="utf-8",
    )
    [book] = read_csv(path)
    assert book.languages == ("en", "fr") and book.authors == ("A, B", "C, D")
    assert book.title == "Petit guide: bilingue"


def test_rdf_tarball_streams_books_with_formats(tmp_path: Path):
    path = tmp_path / "rdf-files.tar.bz2"
    path.write_bytes(gm.rdf_tarball())
    books = {b.id: b for b in read_rdf_tar(path)}
    assert 20000 not in books and set(books) == {b.id for b in gm.BOOKS}
    dumas = books[13951]
    assert dumas.authors == ("Dumas, Alexandre, 1802-1870",)
    assert dumas.languages == ("fr",)
    assert "PQ" not in dumas.subjects  # LCC class codes are not subjects
    assert "https://www.gutenberg.org/files/13951/13951-8.zip" in dumas.formats


def test_rdf_non_text_is_skipped():
    audio = gm.MirrorBook(20000, "x", "y", "fr", "z", None)
    assert parse_rdf(gm.rdf_for(audio, "Sound").encode()) is None


def test_select_by_language_author_subject():
    books = csv_books()
    assert [b.id for b in select(books, language="fr")] == gm.FRENCH_IDS
    assert [b.id for b in select(books, language="French")] == gm.FRENCH_IDS
    assert [b.id for b in select(books, language="fr", author="victor hugo")] == [135]
    assert [b.id for b in select(books, language="fr", author="DUMAS")] == [13951]
    assert [b.id for b in select(books, language="en", subject="courtship")] == [1342]
    assert select(books, language="en", author="Hugo") == []


def test_subject_on_a_catalogue_without_subjects_is_an_error():
    books = [e.book() for e in parse_gutindex(gm.GUTINDEX)]
    assert [b.id for b in select(books, language="fr", author="Voltaire")] == [4650]
    with pytest.raises(CatalogError, match="no subjects"):
        select(books, language="fr", subject="satire")


def test_author_names_inverts_catalogue_order():
    assert "Victor Hugo" in author_names("Hugo, Victor, 1802-1885")
    assert "Jane Austen" in author_names("Austen, Jane, 1775-1817 [Author]")
    assert author_names("Voltaire, 1694-1778")[0] == "Voltaire, 1694-1778"
