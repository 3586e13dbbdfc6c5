"""A small Project Gutenberg mirror on disk, and an FTP server to serve it on 127.0.0.1.

The tree has the shape of the real mirrors (ibiblio, aleph): GUTINDEX.ALL at the top, the
catalogue feeds under cache/epub/feeds/, and books in the classic layout (1/3/135/...).
The texts are the opening paragraphs of public-domain classics, each in the encoding and
with the header and licence of a different era of PG:

    4650  Candide (Voltaire)             UTF-8, 2020s header, "Produced by" credit   -0.zip
    13951 Les trois mousquetaires        Latin-1, 2004 "THIS PROJECT" markers        -8.zip
    2413  Madame Bovary                  CP1252 labelled ISO-8859-1, "***START"      -8.zip
    135   Les Misérables                 UTF-8 with mojibake (one word twice over)   -0.txt
    5001  Notes sans marqueurs           UTF-8 without any PG markers                -0.txt
    99999 Le Livre perdu                 in the catalogue, not on the mirror
    11    Alice's Adventures             ASCII, 1990s small print                    .zip
    1342  Pride and Prejudice            UTF-8, zip with a folder and an image,
                                         start marker wrapped over two lines         -0.zip
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tarfile
import threading
import time
import zipfile
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from tests.training.corpora.site import Site

MODERN_LICENCE = """
Updated editions will replace the previous one--the old editions will
be renamed.

*** START: FULL LICENSE ***

THE FULL PROJECT GUTENBERG LICENSE
PLEASE READ THIS BEFORE YOU DISTRIBUTE OR USE THIS WORK

Section 1. General Terms of Use and Redistributing Project Gutenberg-tm
electronic works
"""

CANDIDE_BODY = """CANDIDE,

OU

L'OPTIMISME

CHAPITRE PREMIER.

Comment Candide fut élevé dans un beau château, et comment il fut chassé
d'icelui.

Il y avait en Westphalie, dans le château de M. le baron de
Thunder-ten-tronckh, un jeune garçon à qui la nature avait donné les mœurs
les plus douces. Sa physionomie annonçait son âme.
"""

CANDIDE = f"""\ufeffThe Project Gutenberg eBook of Candide, by Voltaire

This eBook is for the use of anyone anywhere in the United States and
most other parts of the world at no cost and with almost no restrictions
whatsoever. You may copy it, give it away or re-use it under the terms
of the Project Gutenberg License included with this eBook or online at
www.gutenberg.org.

Title: Candide
       ou l'optimisme

Author: Voltaire

Release Date: January 1, 2004 [eBook #4650]
[Most recently updated: October 3, 2021]

Language: French

Character set encoding: UTF-8

Produced by: Carlo Traverso

*** START OF THE PROJECT GUTENBERG EBOOK CANDIDE ***




Produced by Carlo Traverso, Anne Dreze and the Online
Distributed Proofreading Team.




{CANDIDE_BODY}


*** END OF THE PROJECT GUTENBERG EBOOK CANDIDE ***
{MODERN_LICENCE}"""

DUMAS_BODY = """LES TROIS MOUSQUETAIRES

I

LES TROIS PRÉSENTS DE M. D'ARTAGNAN PÈRE

Le premier lundi du mois d'avril 1625, le bourg de Meung, où naquit
l'auteur du Roman de la Rose, semblait être dans une révolution aussi
entière que si les huguenots en fussent venus faire une seconde Rochelle.
"""

DUMAS = f"""The Project Gutenberg EBook of Les trois mousquetaires, by Alexandre Dumas

This eBook is for the use of anyone anywhere at no cost and with
almost no restrictions whatsoever.  You may copy it, give it away or
re-use it under the terms of the Project Gutenberg License included
with this eBook or online at www.gutenberg.net


Title: Les trois mousquetaires

Author: Alexandre Dumas

Release Date: November 14, 2004 [EBook #13951]

Language: French

Character set encoding: ISO-8859-1

*** START OF THIS PROJECT GUTENBERG EBOOK LES TROIS MOUSQUETAIRES ***




Produced by Renald Levesque




{DUMAS_BODY}



End of the Project Gutenberg EBook of Les trois mousquetaires, by Alexandre Dumas

*** END OF THIS PROJECT GUTENBERG EBOOK LES TROIS MOUSQUETAIRES ***

***** This file should be named 13951-8.txt or 13951-8.zip *****
This and all associated files of various formats will be found in:
        http://www.gutenberg.net/1/3/9/5/13951/
"""

BOVARY_BODY = """Nous étions à l’Étude, quand le Proviseur entra, suivi d’un « nouveau »
habillé en bourgeois et d’un garçon de classe qui portait un grand pupitre.
Ceux qui dormaient se réveillèrent, et chacun se leva comme surpris dans
son travail.

— Levez-vous, dit le Proviseur… “Charbovari”, répondit-il.
"""

BOVARY = f"""The Project Gutenberg EBook of Madame Bovary, by Gustave Flaubert

Title: Madame Bovary

Author: Gustave Flaubert

Release Date: March 2, 2006 [EBook #2413]

Language: French

Character set encoding: ISO-8859-1

***START OF THE PROJECT GUTENBERG EBOOK MADAME BOVARY***

{BOVARY_BODY}

End of Project Gutenberg's Madame Bovary, by Gustave Flaubert

*** END OF THIS PROJECT GUTENBERG EBOOK MADAME BOVARY ***
"""

MISERABLES_BODY = """LES MISÉRABLES

Tome I — FANTINE

En 1815, M. Charles-François-Bienvenu Myriel était évêque de Digne.
C’était un vieillard d’environ soixante-quinze ans; il occupait le siège
de Digne depuis 1806.
"""

MISERABLES = f"""The Project Gutenberg eBook of Les Misérables, by Victor Hugo

Title: Les Misérables

Author: Victor Hugo

Language: French

Character set encoding: UTF-8

*** START OF THE PROJECT GUTENBERG EBOOK LES MISÉRABLES ***

{MISERABLES_BODY}
*** END OF THE PROJECT GUTENBERG EBOOK LES MISÉRABLES ***
{MODERN_LICENCE}"""

NO_MARKERS = """Notes sans marqueurs

Un texte déposé sans en-tête ni licence : on ne devine pas où il commence.
"""

ALICE_BODY = """ALICE'S ADVENTURES IN WONDERLAND

Lewis Carroll

CHAPTER I

Down the Rabbit-Hole

  Alice was beginning to get very tired of sitting by her sister
on the bank, and of having nothing to do:  once or twice she had
peeped into the book her sister was reading, but it had no
pictures or conversations in it, `and what is the use of a book,'
thought Alice `without pictures or conversation?'
"""

ALICE = f"""Project Gutenberg's Alice's Adventures in Wonderland, by Lewis Carroll
**The Project Gutenberg Etext of Alice in Wonderland**
*This 30th edition should be labeled alice30.txt or alice30.zip.
***This Edition Is Being Officially Released On March 8, 1994***

Information about Project Gutenberg (one page)

We produce about two million dollars for each hour we work.  The
fifty hours is one conservative estimate for how long it we take
to get any etext selected, entered, proofread, edited, copyright
searched and analyzed, the copyright letters written, etc.

**Information prepared by the Project Gutenberg legal advisor**
(Three Pages)

***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?  You know: lawyers.
They tell us you might sue us if there is something wrong with
your copy of this etext, even if you got it for free from
someone other than us, and even if what's wrong is not our
fault.

*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

{ALICE_BODY}

End of Project Gutenberg's Alice's Adventures in Wonderland, by Lewis Carroll
"""

PRIDE_BODY = """PRIDE AND PREJUDICE

By Jane Austen

Chapter 1

It is a truth universally acknowledged, that a single man in possession
of a good fortune, must be in want of a wife.
"""

PRIDE = f"""The Project Gutenberg EBook of Pride and Prejudice, by Jane Austen

Title: Pride and Prejudice

Author: Jane Austen

Release Date: August 26, 2008 [EBook #1342]
[Last updated: August 11, 2011]

Language: English

Character set encoding: UTF-8

*** START OF THE PROJECT GUTENBERG EBOOK PRIDE AND
PREJUDICE ***

{PRIDE_BODY}



*** END OF THE PROJECT GUTENBERG EBOOK PRIDE AND PREJUDICE ***
{MODERN_LICENCE}"""


def mojibake(text: str) -> str:
    """UTF-8 bytes read as CP1252 (Latin-1 for the five bytes CP1252 leaves undefined)."""
    out = []
    for byte in text.encode("utf-8"):
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out)


@dataclass(frozen=True)
class MirrorBook:
    id: int
    title: str
    authors: str  # as pg_catalog.csv writes them
    language: str  # "fr" or "en"
    subjects: str
    file: str | None  # name of its file on the mirror (None: not on the mirror)
    data: bytes = b""  # the file's content (a zip or a text)
    body: str = ""  # the clean text the client must produce
    encoding: str = ""  # the codec the client must report


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _miserables_bytes() -> bytes:
    # One word mangled twice over, then the whole file once: the "été" of every tool chain.
    text = MISERABLES.replace("évêque", mojibake("évêque"))
    return mojibake(text).encode("utf-8")


BOOKS: tuple[MirrorBook, ...] = (
    MirrorBook(4650, "Candide\nou l'optimisme", "Voltaire, 1694-1778", "fr",
               "Satire; Philosophical fiction", "4650-0.zip",
               _zip({"4650-0.txt": CANDIDE.encode("utf-8")}), CANDIDE_BODY, "utf-8-sig"),
    MirrorBook(13951, "Les trois mousquetaires", "Dumas, Alexandre, 1802-1870", "fr",
               "Historical fiction; France -- History -- Louis XIII, 1610-1643 -- Fiction",
               "13951-8.zip", _zip({"13951-8.txt": DUMAS.encode("latin-1")}), DUMAS_BODY,
               "latin-1"),
    MirrorBook(2413, "Madame Bovary", "Flaubert, Gustave, 1821-1880", "fr",
               "Adultery -- Fiction; Married women -- Fiction", "2413-8.zip",
               _zip({"2413-8.txt": BOVARY.replace("\n", "\r\n").encode("cp1252")}),
               BOVARY_BODY, "cp1252"),
    MirrorBook(135, "Les Misérables", "Hugo, Victor, 1802-1885", "fr",
               "Historical fiction; Paris (France) -- Fiction", "135-0.txt",
               _miserables_bytes(), MISERABLES_BODY, "utf-8"),
    MirrorBook(5001, "Notes sans marqueurs", "Anonyme", "fr", "Notes", "5001-0.txt",
               NO_MARKERS.encode("utf-8")),
    MirrorBook(99999, "Le Livre perdu", "Personne, 1900-1990", "fr", "Lost books", None),
    MirrorBook(11, "Alice's Adventures in Wonderland", "Carroll, Lewis, 1832-1898", "en",
               "Fantasy fiction", "11.zip", _zip({"alice30.txt": ALICE.encode("ascii")}),
               ALICE_BODY, "utf-8"),
    MirrorBook(1342, "Pride and Prejudice", "Austen, Jane, 1775-1817", "en",
               "Courtship -- Fiction; Sisters -- Fiction", "1342-0.zip",
               _zip({"1342-0/1342-0.txt": PRIDE.encode("utf-8"),
                     "1342-0/images/cover.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
                     "1342-0/readme.htm": b"<p>see the text</p>"}),
               PRIDE_BODY, "utf-8"),
)  # fmt: skip
BY_ID = {book.id: book for book in BOOKS}
FRENCH_IDS = [4650, 13951, 2413, 135, 5001, 99999]  # catalogue order
FETCHABLE_FR = [4650, 13951, 2413, 135]


def book_path(book: MirrorBook) -> str:
    """The book's file in the classic layout, e.g. "/1/3/9/5/13951/13951-8.zip"."""
    digits = str(book.id)
    parents = list(digits[:-1]) or ["0"]
    return "/" + "/".join([*parents, digits, book.file or ""])


GUTINDEX = """GUTINDEX.ALL file of Project Gutenberg eBooks

This is a plain text index of the Project Gutenberg works, posted in reverse
order of release. It is 1234 pages long; there are 70000 books in it.
Use your browser's search feature to find a title, 12345 times faster than reading.

TITLE and AUTHOR                                                     EBOOK NO.

~ ~ ~ ~ Posting Dates for the below eBooks:  1 Oct 2021 to 31 Oct 2021 ~ ~ ~ ~

Le Livre perdu, by Personne                                              99999
 [Language: French]

Notes sans marqueurs                                                      5001
 [Language: French]

Les trois mousquetaires, by Alexandre Dumas                              13951C
 [Language: French]
 [Illustrator: Maurice Leloir]

Candide, by Voltaire                                                      4650
 [Subtitle: ou l'optimisme, traduit de l'allemand de M. le docteur
  Ralph]
 [Language: French]

Madame Bovary, by Gustave                                                 2413
 Flaubert
 [Language: French]

Les Misérables, by Victor Hugo                                             135
 [Language: French]
 [Contents: Tome I -- Fantine;
  Tome II -- Cosette]

Pride and Prejudice, by Jane Austen                                       1342

Le Petit Prince, traduit, by Antoine de Saint-Exupéry                    70123B
 [Language: French and English]

Alice's Adventures in Wonderland, by Lewis
 Carroll                                                                    11

<==End of GUTINDEX.ALL==>
"""


def catalog_csv() -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["Text#", "Type", "Issued", "Title", "Language", "Authors", "Subjects", "LoCC",
         "Bookshelves"]
    )  # fmt: skip
    for book in BOOKS:
        writer.writerow(
            [book.id, "Text", "2004-01-01", book.title, book.language, book.authors,
             book.subjects, "PQ", "Category: Novels"]
        )  # fmt: skip
    writer.writerow(
        [20000, "Sound", "2006-01-01", "Candide (audio)", "fr", "Voltaire, 1694-1778",
         "Satire", "PQ", ""]
    )  # fmt: skip
    return buf.getvalue()


RDF_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xml:base="http://www.gutenberg.org/"
  xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns:dcterms="http://purl.org/dc/terms/"
  xmlns:pgterms="http://www.gutenberg.org/2009/pgterms/"
  xmlns:dcam="http://purl.org/dc/dcam/"
  xmlns:cc="http://web.resource.org/cc/">
  <pgterms:ebook rdf:about="ebooks/{id}">
    <dcterms:title>{title}</dcterms:title>
    <dcterms:creator>
      <pgterms:agent rdf:about="2009/agents/{id}">
        <pgterms:name>{author}</pgterms:name>
      </pgterms:agent>
    </dcterms:creator>
    <dcterms:language>
      <rdf:Description rdf:nodeID="N1">
        <rdf:value rdf:datatype="http://purl.org/dc/terms/RFC4646">{language}</rdf:value>
      </rdf:Description>
    </dcterms:language>
    {subjects}
    <dcterms:subject>
      <rdf:Description rdf:nodeID="N3">
        <dcam:memberOf rdf:resource="http://purl.org/dc/terms/LCC"/>
        <rdf:value>PQ</rdf:value>
      </rdf:Description>
    </dcterms:subject>
    <dcterms:type>
      <rdf:Description rdf:nodeID="N4">
        <dcam:memberOf rdf:resource="http://purl.org/dc/terms/DCMIType"/>
        <rdf:value>{type}</rdf:value>
      </rdf:Description>
    </dcterms:type>
    {formats}
  </pgterms:ebook>
  <cc:Work rdf:about="">
    <cc:license rdf:resource="https://creativecommons.org/publicdomain/zero/1.0/"/>
  </cc:Work>
</rdf:RDF>
"""

SUBJECT = """<dcterms:subject>
      <rdf:Description rdf:nodeID="N2">
        <dcam:memberOf rdf:resource="http://purl.org/dc/terms/LCSH"/>
        <rdf:value>{}</rdf:value>
      </rdf:Description>
    </dcterms:subject>"""

FORMAT = """<dcterms:hasFormat>
      <pgterms:file rdf:about="{url}">
        <dcterms:format>
          <rdf:Description rdf:nodeID="N5">
            <dcam:memberOf rdf:resource="http://purl.org/dc/terms/IMT"/>
            <rdf:value rdf:datatype="http://purl.org/dc/terms/IMT">{mime}</rdf:value>
          </rdf:Description>
        </dcterms:format>
      </pgterms:file>
    </dcterms:hasFormat>"""


def rdf_for(book: MirrorBook, type_: str = "Text") -> str:
    from xml.sax.saxutils import escape

    subjects = "\n    ".join(SUBJECT.format(escape(s)) for s in book.subjects.split("; "))
    formats = [
        FORMAT.format(url=f"https://www.gutenberg.org/ebooks/{book.id}.txt.utf-8",
                      mime="text/plain; charset=utf-8"),
    ]  # fmt: skip
    if book.file is not None:
        url = f"https://www.gutenberg.org/files/{book.id}/{book.file}"
        mime = "application/zip" if book.file.endswith(".zip") else "text/plain"
        formats.append(FORMAT.format(url=url, mime=mime))
    return RDF_TEMPLATE.format(
        id=book.id, title=escape(book.title), author=escape(book.authors),
        language=book.language, subjects=subjects, type=type_, formats="\n    ".join(formats),
    )  # fmt: skip


def rdf_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        items = [(b, "Text") for b in BOOKS]
        items.append((MirrorBook(20000, "Candide (audio)", "Voltaire, 1694-1778", "fr",
                                 "Satire", None), "Sound"))  # fmt: skip
        for book, type_ in items:
            data = rdf_for(book, type_).encode("utf-8")
            info = tarfile.TarInfo(f"cache/epub/{book.id}/pg{book.id}.rdf")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_mirror(root: Path, *, catalogs: tuple[str, ...] = ("csv", "rdf", "gutindex")) -> Path:
    """Write the mirror under `root`; `catalogs` chooses which catalogue files it has."""
    files: dict[str, bytes] = {}
    if "gutindex" in catalogs:
        files["/GUTINDEX.ALL"] = GUTINDEX.encode("utf-8")
    if "csv" in catalogs:
        files["/cache/epub/feeds/pg_catalog.csv"] = catalog_csv().encode("utf-8")
    if "rdf" in catalogs:
        files["/cache/epub/feeds/rdf-files.tar.bz2"] = rdf_tarball()
    for book in BOOKS:
        if book.file is not None:
            files[book_path(book)] = book.data
    for rel, data in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def publish(site: Site, root: Path) -> None:
    """Serve every file of the mirror tree from the HTTP test site."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = "/" + path.relative_to(root).as_posix()
            site.add(rel, path.read_bytes(), "application/octet-stream")


# -- FTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retr:
    at: float  # time.monotonic() when RETR arrived
    path: str  # "/1/3/135/135-0.txt"
    rest: int  # the REST offset, 0 for a transfer from the start


@dataclass
class FtpSite:
    root: Path
    url: str = ""
    retrs: list[Retr] = field(default_factory=list)
    commands: list[tuple[float, str]] = field(default_factory=list)
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def truncate_once(self, path: str) -> None:
        """The next RETR of `path` sends half the file, then closes the data connection."""
        self.faults[path].append("truncate")

    def busy_once(self, path: str) -> None:
        """The next RETR of `path` is answered "450 busy" (a transient 4xx)."""
        self.faults[path].append("busy")

    def _take(self, path: str, kind: str) -> bool:
        with self.lock:
            queue = self.faults.get(path)
            if queue and queue[0] == kind:
                queue.popleft()
                return True
            return False

    def retr_counts(self) -> dict[str, int]:
        """Path -> RETR commands that started at offset 0 (a resumed transfer is not new)."""
        counts: dict[str, int] = defaultdict(int)
        with self.lock:
            for r in self.retrs:
                if r.rest == 0:
                    counts[r.path] += 1
        return dict(counts)


class _HalfFile:
    """A file that ends half-way: the server "completes" a transfer that was cut short."""

    def __init__(self, fd: Any, limit: int) -> None:
        self._fd = fd
        self._limit = limit
        self.name = fd.name

    def read(self, n: int = -1) -> bytes:
        left = self._limit - self._fd.tell()
        if left <= 0:
            return b""
        data: bytes = self._fd.read(left if n < 0 else min(n, left))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fd, name)


@contextmanager
def serve_ftp(root: Path) -> Iterator[FtpSite]:
    """Anonymous, read-only pyftpdlib on 127.0.0.1 (port 0) serving `root`, in a thread."""
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    site = FtpSite(root)
    real_root = os.path.realpath(root)

    def rel(path: str) -> str:
        return "/" + Path(os.path.relpath(os.path.realpath(path), real_root)).as_posix()

    class FS(AbstractedFS):
        def open(self, filename: str, mode: str) -> Any:
            fd = super().open(filename, mode)
            if site._take(rel(filename), "truncate"):
                return _HalfFile(fd, os.path.getsize(filename) // 2)
            return fd

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root))  # perm "elr": list and read only

    class Handler(FTPHandler):
        use_sendfile = False  # sendfile() would bypass _HalfFile
        abstracted_fs = FS

        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            with site.lock:
                site.commands.append((time.monotonic(), cmd))
            super().pre_process_command(line, cmd, arg)

        def ftp_RETR(self, file: str) -> Any:  # noqa: N802 (pyftpdlib's name)
            path = rel(file)
            with site.lock:
                rest = int(getattr(self, "_restart_position", 0))
                site.retrs.append(Retr(time.monotonic(), path, rest))
            if site._take(path, "busy"):
                self._restart_position = 0
                self.respond("450 Server busy, try again later.")
                return None
            return super().ftp_RETR(file)

    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), Handler)
    host, port = server.address[:2]
    site.url = f"ftp://{host}:{port}/"
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        stop.set()
        thread.join(timeout=5)
