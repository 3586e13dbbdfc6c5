"""The screenplay parser, record by record, on screenplays in IMSDb formatting."""

from __future__ import annotations

import dataclasses

import pytest

from tests.training.corpora.screenplays import (
    NIGHT_FERRY,
    THE_LADDER,
    crlf,
    script_page,
    tabbed,
)
from training.corpora.screenplay import (
    Element,
    cue_line,
    extract_pre,
    parse_page,
    parse_screenplay,
    to_plain_text,
)

# Every element of THE_LADDER: (kind, text, line[, extension]). Lines 50-57 are the page
# break: "(MORE)", "2.", "(CONTINUED)", "2 CONTINUED: 2", "MARGARET (V.O.) (CONT'D)";
# the speech before it (line 47) goes on after it.
LADDER_RECORDS = [
    ("action", "THE LADDER", 1),
    ("action", "an original screenplay", 3),
    ("transition", "FADE IN:", 5),
    ("scene_heading", "EXT. MAPLE CLOSE - DAY", 7),
    (
        "action",
        (
            "A cul-de-sac of identical bungalows. MARGARET HOLLIS (60s, cardigan, "
            "iron will) marches down the pavement with a tape measure & a "
            "clipboard."
        ),
        9,
    ),
    ("action", "She stops at number 12. A gleaming aluminium ladder leans against its garage.", 13),
    ("character", "MARGARET", 16),
    ("parenthetical", "(under her breath)", 17),
    ("dialogue", "Three years. Three years he's had my ladder.", 18),
    ("character", "DESMOND", 21, "O.S."),
    ("dialogue", "I can hear you, Margaret.", 22),
    (
        "action",
        (
            "DESMOND PIKE (70s, dressing gown, reading glasses on a chain) rises "
            "from behind the hedge."
        ),
        24,
    ),
    ("character", "DESMOND", 27),
    ("dialogue", "It's not your ladder. It has never been your ladder.", 28),
    ("character", "MARGARET", 31),
    ("dialogue", "It has my initials on it. M.H.", 32),
    ("character", "DESMOND", 34),
    ("dialogue", "Mostly Harmless. I wrote that.", 35),
    ("parenthetical", "(beat)", 36),
    ("dialogue", "As a warning.", 37),
    ("transition", "CUT TO:", 39),
    ("scene_heading", "INT. MARGARET'S KITCHEN - NIGHT", 41),
    (
        "action",
        (
            "Margaret at the table, buried in shoeboxes of receipts. Her cat, "
            "BISCUIT, supervises from the fridge."
        ),
        43,
    ),
    ("character", "MARGARET", 46, "V.O."),
    (
        "dialogue",
        (
            "Every war needs evidence. I kept the receipt for everything I have "
            "ever bought, including the cat."
        ),
        47,
    ),
    ("action", "She holds up a faded slip of paper, triumphant.", 59),
    ("character", "MARGARET", 61),
    ("parenthetical", "(to Biscuit)", 62),
    ("dialogue", '"One ladder, aluminium, six rungs." Dated nineteen ninety-eight.', 63),
    ("action", "Biscuit yawns.", 66),
    ("character", "MARGARET", 68, "CONT'D"),
    ("dialogue", "Nobody asked you.", 69),
    ("transition", "DISSOLVE TO:", 71),
    ("scene_heading", "EXT. MAPLE CLOSE - DAWN", 73),
    (
        "action",
        (
            "Desmond opens his front door. The ladder is gone. In its place, "
            "propped against the garage: a framed receipt."
        ),
        75,
    ),
    ("character", "DESMOND", 78),
    ("parenthetical", "(slowly, with respect)", 79),
    ("dialogue", "Oh, well played.", 80),
    ("transition", "FADE OUT.", 82),
    ("action", "THE END", 84),
]

FERRY_RECORDS = [
    ("action", "NIGHT FERRY", 1),
    ("transition", "FADE IN:", 3),
    ("scene_heading", "EXT. HARBOUR - NIGHT", 5),
    (
        "action",
        ("Fog. A small car ferry, the ISOLDE, idles at the quay. Gulls argue over a dropped chip."),
        7,
    ),
    ("action", "THE HORN BLASTS. Everyone on the quay flinches.", 10),
    ("action", "RUTH (30s, ticket machine strapped to her chest) waves the last car aboard.", 13),
    ("character", "RUTH", 16),
    ("dialogue", "Last crossing! Last crossing to Inishmore!", 17),
    ("character", "TOMAS", 20, "O.S."),
    ("dialogue", "Hold the ramp!", 21),
    ("action", "TOMAS (20s) sprints out of the fog, a cello case on his back.", 23),
    ("character", "RUTH", 25),
    ("parenthetical", "(not moving)", 26),
    ("dialogue", "Ramp's up, love.", 27),
    ("character", "TOMAS", 29),
    ("dialogue", "It's not up. It's right there.", 30),
    ("parenthetical", "(points at it; the ramp rises)", 31),
    ("dialogue", "Ah.", 33),
    ("transition", "SMASH CUT TO:", 35),
    ("scene_heading", "INT./EXT. FERRY DECK - CONTINUOUS", 37),
    (
        "action",
        "Tomas, soaked, hauls himself over the rail. Ruth holds out the ticket machine.",
        39,
    ),
    ("character", "RUTH", 42),
    ("dialogue", "Fourteen euro. Cash or card.", 43),
    ("character", "TOMAS", 47),
    ("dialogue", "Can I pay in music?", 48),
    ("character", "RUTH", 50),
    ("dialogue", "You can pay in fourteen euro.", 51),
    ("action", "He opens the case. Inside: no cello. Sandwiches.", 53),
    ("character", "RUTH", 55, "CONT'D"),
    ("parenthetical", "(sighs)", 56),
    ("dialogue", "Go on then. Ham?", 57),
    ("transition", "FADE TO BLACK.", 59),
]

LADDER_TEXT = """\
THE LADDER

an original screenplay

FADE IN:

EXT. MAPLE CLOSE - DAY

A cul-de-sac of identical bungalows. MARGARET HOLLIS (60s, cardigan, iron will) marches down the pavement with a tape measure & a clipboard.

She stops at number 12. A gleaming aluminium ladder leans against its garage.

MARGARET
(under her breath)
Three years. Three years he's had my ladder.

DESMOND (O.S.)
I can hear you, Margaret.

DESMOND PIKE (70s, dressing gown, reading glasses on a chain) rises from behind the hedge.

DESMOND
It's not your ladder. It has never been your ladder.

MARGARET
It has my initials on it. M.H.

DESMOND
Mostly Harmless. I wrote that.
(beat)
As a warning.

CUT TO:

INT. MARGARET'S KITCHEN - NIGHT

Margaret at the table, buried in shoeboxes of receipts. Her cat, BISCUIT, supervises from the fridge.

MARGARET (V.O.)
Every war needs evidence. I kept the receipt for everything I have ever bought, including the cat.

She holds up a faded slip of paper, triumphant.

MARGARET
(to Biscuit)
"One ladder, aluminium, six rungs." Dated nineteen ninety-eight.

Biscuit yawns.

MARGARET
Nobody asked you.

DISSOLVE TO:

EXT. MAPLE CLOSE - DAWN

Desmond opens his front door. The ladder is gone. In its place, propped against the garage: a framed receipt.

DESMOND
(slowly, with respect)
Oh, well played.

FADE OUT.

THE END
"""  # noqa: E501

FERRY_TEXT = """\
NIGHT FERRY

FADE IN:

EXT. HARBOUR - NIGHT

Fog. A small car ferry, the ISOLDE, idles at the quay. Gulls argue over a dropped chip.

THE HORN BLASTS. Everyone on the quay flinches.

RUTH (30s, ticket machine strapped to her chest) waves the last car aboard.

RUTH
Last crossing! Last crossing to Inishmore!

TOMAS (O.S.)
Hold the ramp!

TOMAS (20s) sprints out of the fog, a cello case on his back.

RUTH
(not moving)
Ramp's up, love.

TOMAS
It's not up. It's right there.
(points at it; the ramp rises)
Ah.

SMASH CUT TO:

INT./EXT. FERRY DECK - CONTINUOUS

Tomas, soaked, hauls himself over the rail. Ruth holds out the ticket machine.

RUTH
Fourteen euro. Cash or card.

TOMAS
Can I pay in music?

RUTH
You can pay in fourteen euro.

He opens the case. Inside: no cello. Sandwiches.

RUTH
(sighs)
Go on then. Ham?

FADE TO BLACK.
"""


def records(elements: list[Element]) -> list[tuple[str | int, ...]]:
    return [
        (e.kind, e.text, e.line, e.extension) if e.extension else (e.kind, e.text, e.line)
        for e in elements
    ]


def assert_records(got: list[Element], expected: list[tuple[str | int, ...]]) -> None:
    """Line by line, so that a failure names the first record that differs."""
    actual = records(got)
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        assert a == e, f"record {i}: got {a!r}, expected {e!r}"
    assert len(actual) == len(expected), actual[len(expected) :] or expected[len(actual) :]


def test_bold_script_record_by_record() -> None:
    assert_records(parse_screenplay(THE_LADDER), LADDER_RECORDS)


def test_script_without_bold_in_other_columns_record_by_record() -> None:
    assert_records(parse_screenplay(NIGHT_FERRY), FERRY_RECORDS)


def test_each_record_starts_on_its_line() -> None:
    lines = THE_LADDER.splitlines()
    for e in parse_screenplay(THE_LADDER):
        source = lines[e.line - 1]
        first = e.text.split()[0].replace('"', "&quot;").replace("'", "&#39;")
        assert first in source, (e, source)


def test_plain_text_exactly() -> None:
    assert to_plain_text(parse_screenplay(THE_LADDER)) == LADDER_TEXT
    assert to_plain_text(parse_screenplay(NIGHT_FERRY)) == FERRY_TEXT


def test_plain_text_has_no_markup_or_page_furniture() -> None:
    text = to_plain_text(parse_screenplay(THE_LADDER))
    for furniture in ("<b>", "&amp;", "&#39;", "(MORE)", "CONTINUED", "CONT'D", "\n2.\n", "  "):
        assert furniture not in text
    assert all(line == line.strip() for line in text.splitlines())


def test_crlf_gives_the_same_records() -> None:
    assert "\r\n" in crlf(THE_LADDER)
    assert parse_screenplay(crlf(THE_LADDER)) == parse_screenplay(THE_LADDER)
    assert parse_screenplay(crlf(NIGHT_FERRY)) == parse_screenplay(NIGHT_FERRY)


def test_tabs_are_expanded_to_the_same_columns() -> None:
    assert "\t\t    TOMAS" in tabbed(NIGHT_FERRY)
    assert parse_screenplay(tabbed(NIGHT_FERRY)) == parse_screenplay(NIGHT_FERRY)
    assert parse_screenplay(tabbed(THE_LADDER)) == parse_screenplay(THE_LADDER)


def test_empty_pre() -> None:
    assert parse_screenplay("") == []
    assert parse_screenplay("\n\n   \n") == []
    assert to_plain_text([]) == ""


def test_entities_and_nbsp() -> None:
    pre = (
        "               Tom &amp; Jerry&#39;s caf&eacute; &lt;open&gt;.\n"
        "\n"
        "<b>                                     JERRY</b>\n"
        "&nbsp;                        &quot;Caf&#233;&quot;, he says.\n"
    )
    assert records(parse_screenplay(pre)) == [
        ("action", "Tom & Jerry's café <open>.", 1),
        ("character", "JERRY", 3),
        ("dialogue", '"Café", he says.', 4),
    ]


def test_bold_spanning_lines_and_a_bold_slugline() -> None:
    pre = (
        "<b>10   INT. ATTIC - NIGHT   10\n"
        "</b>\n"
        "               Dust.\n"
        "\n"
        "<b>               LATER</b>\n"
        "\n"
        "               More dust.\n"
        "\n"
        "<b>                                     ANNA\n"
        "</b>                         Achoo.\n"
    )
    assert records(parse_screenplay(pre)) == [
        ("scene_heading", "INT. ATTIC - NIGHT", 1),
        ("action", "Dust.", 3),
        ("scene_heading", "LATER", 5),
        ("action", "More dust.", 7),
        ("character", "ANNA", 9),
        ("dialogue", "Achoo.", 10),
    ]


@pytest.mark.parametrize(
    ("line", "heading"),
    [
        ("12  INT. KITCHEN - NIGHT  12", "INT. KITCHEN - NIGHT"),
        ("12A   EXT. ROOF - DAY   12A", "EXT. ROOF - DAY"),
        ("7 INT./EXT. CAR - MOVING", "INT./EXT. CAR - MOVING"),
        ("I/E VAN - NIGHT", "I/E VAN - NIGHT"),
        ("EXT. HIGHWAY 66 - DAY", "EXT. HIGHWAY 66 - DAY"),
        ("EXT. HIGHWAY 66", "EXT. HIGHWAY 66"),
        ("INT KITCHEN", "INT KITCHEN"),
    ],
)
def test_scene_headings_lose_their_numbers(line: str, heading: str) -> None:
    assert records(parse_screenplay(f"     {line}\n")) == [("scene_heading", heading, 1)]


@pytest.mark.parametrize(
    "line",
    [
        "12.",
        "- 12 -",
        "12",
        "(CONTINUED)",
        "CONTINUED:",
        "CONTINUED: (2)",
        "34 CONTINUED: 34",
        "(MORE)",
        "Page 3",
        "35 OMITTED 35",
    ],
)
def test_page_furniture_is_dropped(line: str) -> None:
    pre = f"               Before.\n\n                    {line}\n\n               After.\n"
    assert records(parse_screenplay(pre)) == [("action", "Before.", 1), ("action", "After.", 5)]


@pytest.mark.parametrize(
    "line", ["CUT TO:", "FADE IN:", "FADE OUT.", "DISSOLVE TO:", "SMASH CUT TO:", "FADE TO BLACK."]
)
def test_transitions(line: str) -> None:
    assert records(parse_screenplay(f"{' ' * 60}{line}\n")) == [("transition", line, 1)]


def test_cue_extensions() -> None:
    pre = (
        "               A room.\n"
        "\n"
        "                                     MRS. O&#39;HARA (V.O.) (CONT&#39;D)\n"
        "                         Hello.\n"
        "\n"
        "                                     DR. NO (O.S.)\n"
        "                         Goodbye.\n"
    )
    cues = [e for e in parse_screenplay(pre) if e.kind == "character"]
    assert [(e.text, e.extension) for e in cues] == [
        ("MRS. O'HARA", "V.O., CONT'D"),
        ("DR. NO", "O.S."),
    ]
    assert [cue_line(e) for e in cues] == ["MRS. O'HARA (V.O.)", "DR. NO (O.S.)"]


def test_flush_left_script_falls_back_to_patterns() -> None:
    pre = "INT. SHED - DAY\n\nA spade.\n\nBOB\n(grim)\nDig.\nDeeper.\n\nCUT TO:\n"
    assert records(parse_screenplay(pre)) == [
        ("scene_heading", "INT. SHED - DAY", 1),
        ("action", "A spade.", 3),
        ("character", "BOB", 5),
        ("parenthetical", "(grim)", 6),
        ("dialogue", "Dig. Deeper.", 7),
        ("transition", "CUT TO:", 10),
    ]


def test_extract_pre_takes_the_outermost_of_nested_pres() -> None:
    page = script_page("The Ladder", THE_LADDER, nested=True)
    # Line 1 of the outer <pre> holds the nested <html><head>...<pre>: the script starts on 2.
    shifted = [dataclasses.replace(e, line=e.line + 1) for e in parse_screenplay(THE_LADDER)]
    assert parse_page(page) == shifted
    assert extract_pre(page).startswith("<html><head><title></title></head><body><pre>")


def test_extract_pre_takes_the_biggest_of_two_pres() -> None:
    page = script_page("The Ladder", THE_LADDER, nested=False, extra_pre=True)
    assert extract_pre(page) == THE_LADDER
    assert parse_page(page) == parse_screenplay(THE_LADDER)


def test_extract_pre_edge_cases() -> None:
    assert extract_pre("<html><body>No script here.</body></html>") == ""
    assert extract_pre("<PRE>\r\nA\nB</PRE>") == "A\nB"
    assert extract_pre("<p>x</p><pre>never closed\nstill script") == "never closed\nstill script"
    assert extract_pre("<pre></pre>") == ""
