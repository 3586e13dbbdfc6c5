"""Fixture screenplays in IMSDb formatting, and an IMSDb-shaped site built from them.

The two screenplays are original (written for these tests), laid out the way IMSDb serves
scripts: THE_LADDER with `<b>` around headings and cues, the usual columns (headings and
action at 15, dialogue 25, parentheticals 30, cues 37, transitions about 60), numbered
scenes, a page break inside a speech ("(MORE)", page number, "(CONTINUED)", "CONTINUED:",
"NAME (CONT'D)"), V.O./O.S. and HTML entities; NIGHT_FERRY with no bold at all and other
columns (action 0, dialogue 10, parentheticals 15, cues 20, transitions 45).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

from tests.training.corpora.site import Site

THE_LADDER = """\
<b>                              THE LADDER</b>

                          an original screenplay

<b>FADE IN:</b>

<b>1    EXT. MAPLE CLOSE - DAY                                            1</b>

               A cul-de-sac of identical bungalows. MARGARET HOLLIS
               (60s, cardigan, iron will) marches down the pavement
               with a tape measure &amp; a clipboard.

               She stops at number 12. A gleaming aluminium ladder
               leans against its garage.

<b>                                     MARGARET</b>
                              (under her breath)
                         Three years. Three years he&#39;s had
                         my ladder.

<b>                                     DESMOND (O.S.)</b>
                         I can hear you, Margaret.

               DESMOND PIKE (70s, dressing gown, reading glasses on
               a chain) rises from behind the hedge.

<b>                                     DESMOND</b>
                         It&#39;s not your ladder. It has never
                         been your ladder.

<b>                                     MARGARET</b>
                         It has my initials on it. M.H.

<b>                                     DESMOND</b>
                         Mostly Harmless. I wrote that.
                              (beat)
                         As a warning.

                                                            CUT TO:

<b>2    INT. MARGARET&#39;S KITCHEN - NIGHT                                 2</b>

               Margaret at the table, buried in shoeboxes of
               receipts. Her cat, BISCUIT, supervises from the fridge.

<b>                                     MARGARET (V.O.)</b>
                         Every war needs evidence. I kept
                         the receipt for everything I have
                         ever bought, including
                                   (MORE)

                                                               2.
<b>                                                     (CONTINUED)</b>
<b>2    CONTINUED:                                                         2</b>

<b>                                     MARGARET (V.O.) (CONT&#39;D)</b>
                         the cat.

               She holds up a faded slip of paper, triumphant.

<b>                                     MARGARET</b>
                              (to Biscuit)
                         &quot;One ladder, aluminium, six
                         rungs.&quot; Dated nineteen ninety-eight.

               Biscuit yawns.

<b>                                     MARGARET (CONT&#39;D)</b>
                         Nobody asked you.

                                                       DISSOLVE TO:

<b>3    EXT. MAPLE CLOSE - DAWN                                           3</b>

               Desmond opens his front door. The ladder is gone. In
               its place, propped against the garage: a framed receipt.

<b>                                     DESMOND</b>
                              (slowly, with respect)
                         Oh, well played.

                                                          FADE OUT.

                                 THE END
"""

NIGHT_FERRY = """\
NIGHT FERRY

FADE IN:

EXT. HARBOUR - NIGHT

Fog. A small car ferry, the ISOLDE, idles at the quay. Gulls
argue over a dropped chip.

THE HORN BLASTS.
Everyone on the quay flinches.

RUTH (30s, ticket machine strapped to her chest) waves the
last car aboard.

                    RUTH
          Last crossing! Last crossing
          to Inishmore!

                    TOMAS (O.S.)
          Hold the ramp!

TOMAS (20s) sprints out of the fog, a cello case on his back.

                    RUTH
               (not moving)
          Ramp's up, love.

                    TOMAS
          It's not up. It's right there.
               (points at it; the
                ramp rises)
          Ah.

                                             SMASH CUT TO:

INT./EXT. FERRY DECK - CONTINUOUS

Tomas, soaked, hauls himself over the rail. Ruth holds out
the ticket machine.

                    RUTH
          Fourteen euro. Cash or card.

                              - 2 -

                    TOMAS
          Can I pay in music?

                    RUTH
          You can pay in fourteen euro.

He opens the case. Inside: no cello. Sandwiches.

                    RUTH (CONT'D)
               (sighs)
          Go on then. Ham?

                                             FADE TO BLACK.
"""


def crlf(text: str) -> str:
    """The same script with DOS line ends."""
    return text.replace("\n", "\r\n")


def tabbed(text: str) -> str:
    """The same script with each leading run of 8 spaces typed as a tab."""
    return re.sub(r"^(?: {8})+", lambda m: "\t" * (len(m[0]) // 8), text, flags=re.MULTILINE)


def retitled(text: str, old: str, new: str) -> str:
    """A variant with another title line (so each film's page has its own bytes)."""
    return text.replace(old, new, 1)


TINY = """\
<b>                              NOTHING MUCH</b>

               A blank page.

                                                          FADE OUT.
"""

# -- the site -------------------------------------------------------------------------------

ROBOTS = """\
User-agent: *
Disallow: /scripts/Forbidden-Fruit.html
"""


def film_path(title: str) -> str:
    return f"/Movie Scripts/{title} Script.html"


def genre_page(genre: str, films: list[tuple[str, str]]) -> str:
    """IMSDb's genre listing: one <p> per film, the link's href as given (raw or encoded)."""
    rows = "\n".join(
        f'<p><a href="{escape(href)}" title="{escape(title)} Script">{escape(title)}</a>'
        f" (2024-01-01)<br><i>Written by A. Writer</i><br></p>"
        for title, href in films
    )
    return f"""<html><head><title>{genre} Movie Scripts</title></head><body>
<table width="100%" class="body"><tr>
<td valign="top"><a href="/">Home</a> <a href="/genre/Comedy">Comedy</a>
<a href="/genre/Drama">Drama</a>
<a href="https://elsewhere.example/Movie Scripts/X Script.html">Elsewhere</a></td>
<td valign="top"><h1>{genre} Movie Scripts</h1>
{rows}
</td></tr></table></body></html>
"""


def film_page(title: str, genre: str, script: str | None, pdf: bool = False) -> str:
    """IMSDb's film page: details, and the "Read ... Script" link when there is a script."""
    if script is not None:
        read = f'<a href="{escape(script)}">Read &quot;{escape(title)}&quot; Script</a>'
    elif pdf:
        read = f'<a href="/pdf/{escape(quote(title))}.pdf">Read the PDF</a>'
    else:
        read = "Script not available."
    return f"""<html><head><title>{escape(title)} Script at IMSDb.</title></head><body>
<table class="script-details" width="100%"><tr><td>
<h1>{escape(title)} Script</h1>
<b>Writers</b> : <a href="/writer.php?w=A. Writer" title="Scripts by A. Writer">A. Writer</a><br>
<b>Genres</b> : <a href="/genre/{genre}" title="{genre} Scripts">{genre}</a><br><br>
{read}
<br><a href="/Movie Scripts/The Ladder Script.html">Also: The Ladder</a>
</td></tr></table></body></html>
"""


def script_page(title: str, pre: str, *, nested: bool = True, extra_pre: bool = False) -> str:
    """IMSDb's script page: the screenplay in <td class="scrtext"><pre>, often nested."""
    if nested:
        body = f"<pre><html><head><title></title></head><body><pre>\n{pre}</pre></pre>"
    else:
        body = f"<pre>\n{pre}</pre>"
    extra = "<pre>IMSDb opinion: none</pre>" if extra_pre else ""
    return f"""<html><head><title>{escape(title)} Script at IMSDb.</title></head><body>
<table width="100%"><tr><td class="scrtext">
{extra}{body}
<table><tr><td><h1>{escape(title)}</h1><b>Writers</b>: A. Writer</td></tr></table>
</td></tr></table></body></html>
"""


@dataclass(frozen=True)
class Film:
    title: str
    href: str  # as the genre page writes it
    path: str  # decoded film page path
    script: str | None  # decoded script page path, when the film page links one
    pre: str | None  # the screenplay served at `script`


@dataclass
class Imsdb:
    """What `build_imsdb` put on the site."""

    genres: dict[str, list[Film]] = field(default_factory=dict)
    disallowed: str = "/scripts/Forbidden-Fruit.html"

    def film(self, title: str) -> Film:
        return next(f for films in self.genres.values() for f in films if f.title == title)


def build_imsdb(site: Site) -> Imsdb:
    """Genres Comedy (6 films: 3 good scripts, one without a script, one disallowed by
    robots.txt, one too short), Drama (3 films, one of them also a comedy) and Western
    (1 film: genre page, film page and script are 3 requests)."""
    ladder = THE_LADDER
    snakes = crlf(retitled(THE_LADDER, "THE LADDER", "LADDERS &amp; SNAKES"))
    biscuit = retitled(THE_LADDER, "THE LADDER", "BISCUIT&#39;S REVENGE")
    ferry = NIGHT_FERRY
    crossing = tabbed(retitled(NIGHT_FERRY, "NIGHT FERRY", "THE CROSSING"))
    dust = retitled(NIGHT_FERRY, "NIGHT FERRY", "DUST")

    def film(title: str, script: str | None, pre: str | None, *, encoded: bool = False) -> Film:
        path = film_path(title)
        href = path.replace(" ", "%20").replace("&", "%26").replace("?", "%3F") if encoded else path
        return Film(title, href, path, script, pre)

    imsdb = Imsdb()
    imsdb.genres["Comedy"] = [
        film("The Ladder", "/scripts/The-Ladder.html", ladder),
        film("Ladders & Snakes", "/scripts/Ladders-&-Snakes.html", snakes, encoded=True),
        film("What's Up, Desmond?", None, None, encoded=True),
        film("Forbidden Fruit", "/scripts/Forbidden-Fruit.html", ladder),
        film("Short Subject", "/scripts/Short-Subject.html", TINY),
        film("Biscuit's Revenge", "/scripts/Biscuit's-Revenge.html", biscuit),
    ]
    imsdb.genres["Drama"] = [
        film("Night Ferry", "/scripts/Night-Ferry.html", ferry),
        film("The Crossing", "/scripts/The-Crossing.html", crossing),
        imsdb.genres["Comedy"][0],
    ]
    imsdb.genres["Western"] = [film("Dust", "/scripts/Dust.html", dust)]

    site.add("/robots.txt", ROBOTS, "text/plain")
    for genre, films in imsdb.genres.items():
        site.add(f"/genre/{genre}", genre_page(genre, [(f.title, f.href) for f in films]))
        for i, f in enumerate(films):
            site.add(f.path, film_page(f.title, genre, f.script, pdf=f.script is None))
            if f.script is not None and f.pre is not None:
                page = script_page(f.title, f.pre, nested=i % 2 == 0, extra_pre=i == 1)
                site.add(f.script, page)
    return imsdb
