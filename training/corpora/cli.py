"""talkative-corpus: fetch film scripts or Project Gutenberg books and build a training corpus.

Both commands crawl politely (robots.txt, one request a second by default, a User-Agent,
retries with backoff), keep everything they download under --cache with a manifest, and
resume where an interrupted run stopped without downloading anything twice. They then
build OUT/train.txt, OUT/valid.txt and OUT/manifest.json, which every trainer reads:

    talkative-corpus scripts --genre Comedy --limit 50
    talkative-corpus gutenberg --language fr --max-mb 20
    python -m training.char_lstm.train --corpus data/corpora/gutenberg_fr --run-dir runs/fr
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.corpora.builder import BuildConfig, CorpusTooSmallError, SourceInfo, build_corpus
from training.corpora.common import CorpusManifest
from training.corpora.http import USER_AGENT, FetchError, PoliteClient, Politeness

DEFAULT_SCRIPT_SITE = "https://imsdb.com"
# A PGLAF mirror with the classic numbered tree and GUTINDEX.ALL; where a mirror lacks the
# catalogue feeds (cache/epub/feeds/), --catalog auto falls back to GUTINDEX.ALL.
DEFAULT_MIRROR = "https://aleph.pglaf.org/"


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def _add_politeness(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("politeness (the defaults are what a public site should see)")
    g.add_argument(
        "--rate",
        type=_positive_float,
        default=1.0,
        help="requests per second to one host, at most; robots.txt Crawl-delay can only "
        "lower it (default: 1)",
    )
    g.add_argument(
        "--user-agent",
        default=USER_AGENT,
        help="User-Agent sent with every request; name yourself and a contact "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds to wait for a server to answer before retrying (default: 30)",
    )
    g.add_argument(
        "--retries",
        type=_non_negative_int,
        default=4,
        help="retries of a failed request (timeouts, 429, 5xx, cut-off downloads) with "
        "exponential backoff and jitter (default: 4)",
    )


def _add_build(p: argparse.ArgumentParser, out_help: str) -> None:
    g = p.add_argument_group("corpus")
    g.add_argument("--out", type=Path, default=None, help=out_help)
    g.add_argument(
        "--valid-fraction",
        type=_fraction,
        default=0.1,
        help="share of whole documents held out for validation, chosen by a hash of the "
        "title so it is stable as the crawl grows (default: 0.1)",
    )
    g.add_argument(
        "--seed", type=int, default=0, help="seed of the validation split and MinHash (default: 0)"
    )
    g.add_argument(
        "--near-duplicate",
        type=_fraction,
        default=0.8,
        help="drop a document whose word 5-gram Jaccard similarity with one already kept "
        "reaches this (default: 0.8)",
    )
    g.add_argument(
        "--min-chars",
        type=_positive_int,
        default=500,
        help="drop documents shorter than this once cleaned: error pages, stubs (default: 500)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")


def _politeness(args: argparse.Namespace) -> Politeness:
    return Politeness(
        rate=args.rate,
        user_agent=args.user_agent,
        read_timeout=args.timeout,
        retries=args.retries,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkative-corpus",
        description="Fetch film scripts or Project Gutenberg books politely and build a "
        "training corpus (train.txt, valid.txt split by whole documents, manifest.json). "
        "Re-running a command resumes: nothing already downloaded is fetched again.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "scripts",
        help="film scripts from an IMSDb-shaped site, by genre",
        description="Follow a genre page to each film's page and its script, parse the "
        "screenplay (scene headings, action, characters, parentheticals, dialogue, "
        "transitions) and build a corpus of the clean plain text.",
    )
    s.add_argument(
        "--genre",
        action="append",
        required=True,
        help="genre as the site names it (Comedy, Drama, Horror...); repeat for several",
    )
    s.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="at most this many scripts per genre (default: all the genre page lists)",
    )
    s.add_argument(
        "--site", default=DEFAULT_SCRIPT_SITE, help="base URL of the site (default: %(default)s)"
    )
    s.add_argument(
        "--cache",
        type=Path,
        default=Path("data/raw/scripts"),
        help="downloaded pages, manifest.jsonl and failures.jsonl (default: data/raw/scripts)",
    )
    s.add_argument(
        "--refresh",
        action="store_true",
        help="fetch the genre listings again (scripts already held are still not refetched)",
    )
    _add_politeness(s)
    _add_build(s, "corpus directory (default: data/corpora/scripts_GENRE[_GENRE...])")

    g = sub.add_parser(
        "gutenberg",
        help="Project Gutenberg books from a mirror, by language (and author or subject)",
        description="Read a mirror's catalogue (pg_catalog.csv, the RDF tarball or "
        "GUTINDEX.ALL), pick books by language, download them over HTTP or FTP, unzip, fix "
        "their encoding, strip the Project Gutenberg header and licence by their markers, "
        "stop at a size budget and build a corpus.",
    )
    g.add_argument(
        "--language",
        required=True,
        help="ISO 639-1 code of the books' language (en, fr, de...)",
    )
    g.add_argument(
        "--max-mb",
        type=_positive_float,
        required=True,
        help="stop once the clean texts reach this many megabytes (UTF-8, 10**6 bytes)",
    )
    g.add_argument("--author", default=None, help="only authors whose name contains this")
    g.add_argument(
        "--subject",
        default=None,
        help="only books with a subject containing this (CSV and RDF catalogues have "
        "subjects; GUTINDEX does not)",
    )
    g.add_argument(
        "--mirror",
        default=DEFAULT_MIRROR,
        help="base URL of the mirror, http(s):// or ftp:// (default: %(default)s)",
    )
    g.add_argument(
        "--catalog",
        choices=["auto", "csv", "rdf", "gutindex"],
        default="auto",
        help="which catalogue to read; auto takes the first the mirror has, in that order",
    )
    g.add_argument(
        "--cache",
        type=Path,
        default=Path("data/raw/gutenberg"),
        help="catalogue, downloads, clean texts and manifest.jsonl (default: data/raw/gutenberg)",
    )
    _add_politeness(g)
    _add_build(g, "corpus directory (default: data/corpora/gutenberg_LANGUAGE)")
    return parser


def _report_skipped(count: int, what: str, cache: Path) -> None:
    if count:
        print(f"{count} {what} skipped for good: reasons in {cache / 'failures.jsonl'}")


def _build_config(
    args: argparse.Namespace, out: Path, *, language: str, source: str, licence: str
) -> BuildConfig:
    return BuildConfig(
        name=out.name,
        language=language,
        source=source,
        licence=licence,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
        near_duplicate=args.near_duplicate,
        min_chars=args.min_chars,
    )


def run_scripts(args: argparse.Namespace) -> CorpusManifest:
    from training.corpora.scripts import ScriptCrawler, load_failures, script_documents

    genres = [genre.strip() for genre in args.genre]
    out = args.out or Path("data/corpora") / ("scripts_" + "_".join(g.lower() for g in genres))
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    with PoliteClient(_politeness(args), robots_cache=cache / "robots.json") as client:
        crawler = ScriptCrawler(client, args.site, cache)
        entries = []
        for genre in genres:
            entries += crawler.crawl(
                genre, args.limit, progress=not args.no_progress, refresh=args.refresh
            )
        skipped = [f for f in load_failures(cache) if f.genre in genres]
    _report_skipped(len(skipped), "films", cache)
    unique = list({e.url: e for e in entries}.values())  # a film listed under two genres
    sources = {e.title: SourceInfo(e.url, e.sha256, e.fetched, {"genre": e.genre}) for e in unique}
    config = _build_config(
        args,
        out,
        language="en",
        source=f"film scripts from {args.site}, genres {', '.join(genres)}",
        licence="screenplays under their authors' copyright: research use only, "
        "do not redistribute the corpus or publish verbatim output",
    )
    return build_corpus(
        script_documents(cache, unique), out, config, sources=sources, progress=not args.no_progress
    )


def run_gutenberg(args: argparse.Namespace) -> CorpusManifest:
    from training.corpora.gutenberg import GutenbergClient, book_documents
    from training.corpora.pg_catalog import select

    language = args.language.strip().lower()
    out = args.out or Path("data/corpora") / f"gutenberg_{language}"
    with GutenbergClient(args.mirror, args.cache, _politeness(args)) as client:
        books = select(
            client.catalog(args.catalog),
            language=language,
            author=args.author,
            subject=args.subject,
        )
        if not books:
            wanted = ", ".join(
                f"{k}={v!r}"
                for k, v in (
                    ("language", language),
                    ("author", args.author),
                    ("subject", args.subject),
                )
                if v
            )
            raise ValueError(f"the catalogue has no book matching {wanted}")
        entries = client.fetch(books, int(args.max_mb * 1_000_000), progress=not args.no_progress)
        wanted_ids = {book.id for book in books}
        skipped = sum(1 for book_id in client.failures() if book_id in wanted_ids)
    _report_skipped(skipped, "books", args.cache)
    docs = list(book_documents(args.cache, entries))
    sources = {
        doc.title: SourceInfo(e.url, e.sha256, e.fetched, {"id": e.id, "encoding": e.encoding})
        for doc, e in zip(docs, entries, strict=True)  # one document per entry, in order
    }
    config = _build_config(
        args,
        out,
        language=language,
        source=f"Project Gutenberg books ({language}) from {args.mirror}",
        licence="public domain in the USA (Project Gutenberg); the PG licence and "
        "trademark text were removed",
    )
    return build_corpus(docs, out, config, sources=sources, progress=not args.no_progress)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"scripts": run_scripts, "gutenberg": run_gutenberg}[args.command]
    try:
        manifest = command(args)
    except (FetchError, CorpusTooSmallError, ValueError, OSError) as exc:
        print(f"talkative-corpus {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    files = ", ".join(f"{k}: {v['chars']:,} chars" for k, v in manifest.files.items())
    kept = sum(len(titles) for titles in manifest.documents.values())
    print(
        f"{manifest.name}: {kept} documents ({len(manifest.dropped)} dropped), {files} "
        f"-> {args.out or Path('data/corpora') / manifest.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
