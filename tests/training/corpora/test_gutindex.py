"""GUTINDEX.ALL: irregular listings parsed by layout."""

from __future__ import annotations

from pathlib import Path

from tests.training.corpora.gutenberg_mirror import GUTINDEX
from training.corpora.gutindex import language_codes, parse_gutindex, read_gutindex


def entries():
    return {e.id: e for e in parse_gutindex(GUTINDEX)}


def test_header_prose_and_separators_are_not_entries():
    found = entries()
    # "12345 times faster" in the prose and the separator lines yield nothing.
    assert sorted(found) == [11, 135, 1342, 2413, 4650, 5001, 13951, 70123, 99999]


def test_wrapped_titles_authors_and_attributes():
    found = entries()
    assert found[2413].title == "Madame Bovary"
    assert found[2413].author == "Gustave Flaubert"  # author wrapped onto the next line
    assert found[11].author == "Lewis Carroll"  # the number on the last line (older files)
    assert found[4650].attributes["Subtitle"] == (
        "ou l'optimisme, traduit de l'allemand de M. le docteur Ralph"
    )
    assert found[135].attributes["Contents"] == "Tome I -- Fantine; Tome II -- Cosette"
    assert found[13951].attributes["Illustrator"] == "Maurice Leloir"


def test_suffixes_missing_authors_and_non_ascii():
    found = entries()
    assert found[13951].suffix == "C" and found[70123].suffix == "B"
    assert found[5001].author is None
    assert found[70123].author == "Antoine de Saint-Exupéry"
    assert found[135].title == "Les Misérables"


def test_languages_default_to_english_and_map_to_iso_codes():
    found = entries()
    assert found[1342].languages == ("en",)
    assert found[4650].languages == ("fr",)
    assert found[70123].languages == ("fr", "en")
    assert language_codes("German") == ("de",)
    assert language_codes("Finnish and Swedish") == ("fi", "sv")
    assert language_codes("Latin") == ("la",)


def test_number_in_a_title_is_not_the_ebook_number():
    text = (
        "TITLE and AUTHOR                                                     EBOOK NO.\n\n"
        "Punch, or the London Charivari, Vol. 147, by Various                   55555\n"
        "The Works of Lord Byron. Vol. 3\n"
        " [Language: English]\n"
    )
    found = list(parse_gutindex(text))
    assert [(e.id, e.title, e.author) for e in found] == [
        (55555, "Punch, or the London Charivari, Vol. 147", "Various")
    ]


def test_latin1_copy_of_the_file(tmp_path: Path):
    path = tmp_path / "GUTINDEX.2003"
    path.write_bytes(GUTINDEX.encode("latin-1", errors="replace"))
    books = {b.id: b for b in read_gutindex(path)}
    assert books[135].title == "Les Misérables"
    assert books[11].authors == ("Lewis Carroll",) and books[11].subjects == ()
