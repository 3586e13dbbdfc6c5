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


# The layout of the yearly GUTINDEX files and the weekly listings they are made from:
# numbered section rules, [Link:] / [Files:] / [Clearance:] lines, indents of two or
# three spaces, a "]" forgotten, a [Files:] list that wraps, an entry without ", by".
WEEKLY = """\
---------[  47 NEW PG EBOOK(S) ]------------------------------------------------

An Account of Northern Letters, with Extracts, Mary Ellen Hollis        20980
  [Link: http://www.gutenberg.org/2/0/9/8/20980 ]
  [Files: 20980.txt; 20980-8.txt; 20980-h.htm; ]
  [Clearance: gbn0312082222]

Nach Europa! Zweiter Band, by Fritz Gerhard                              20944
   [Subtitle: Ein Volksbuch]
   [Illustrator: Carl Weber
   [Language: German]
   [Files: 20944.txt; 20944-8.txt; 20944-0.txt; 20944-tei.tei;
          20944-h.htm; 20944-pdf.pdf]

Queries and Answers, No. 179. Saturday, April 2, 1853, by Various        20954
  [Subtitle: A Medium of Inter-communication for Literary Men, Artists,
              Antiquaries, etc]

Kvar Noveloj, by Mark Twain                                              20943
  [Translator: Edwin Grobe]
  [Language: Esperanto]

---------[   0 CHANGES/CORRECTIONS/IMPROVEMENTS ]-------------------------------

None this week.
"""


def test_weekly_listing_layout():
    found = {e.id: e for e in parse_gutindex(WEEKLY)}
    assert sorted(found) == [20943, 20944, 20954, 20980]
    assert found[20980].author is None  # no ", by": the whole line is the title
    assert found[20980].attributes["Files"] == "20980.txt; 20980-8.txt; 20980-h.htm;"
    # The unclosed [Illustrator: ... does not swallow the language after it.
    assert found[20944].attributes["Illustrator"] == "Carl Weber"
    assert found[20944].languages == ("de",)
    assert found[20944].attributes["Files"].endswith("20944-h.htm; 20944-pdf.pdf")
    assert found[20954].title == "Queries and Answers, No. 179. Saturday, April 2, 1853"
    assert found[20943].languages == ("eo",)
