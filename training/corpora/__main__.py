"""Build the offline corpora: python -m training.corpora --help."""

from __future__ import annotations

from pathlib import Path

from talkative_common.cli import command_parser
from training.corpora import austen, bible_sources, kjv, segond, shakespeare, styled

BUILDERS = {
    "kjv_en": kjv.build,
    "segond_fr": segond.build,
    "web_en": bible_sources.builder("web"),
    "darby_fr": bible_sources.builder("darby"),
    "rv1909_es": bible_sources.builder("rv1909"),
    "austen_en": austen.build,
    "shakespeare_en": shakespeare.build,
    "styled_en": styled.builder("styled_en"),
    "styled_fr": styled.builder("styled_fr"),
    "styled_es": styled.builder("styled_es"),
}


def main(argv: list[str] | None = None) -> None:
    """Build clean UTF-8 training corpora from texts installed on this machine (no network but
    `apt-get download` of Debian's r-cran-janeaustenr into data/raw/debian, once). Each
    corpus gets train.txt, valid.txt (whole books held out) and manifest.json with sizes and SHA-256
    checksums."""
    parser = command_parser(main)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        default=[],
        help="corpora to build (default: all): kjv_en = King James Bible, "
        "segond_fr = Louis Segond 1910 (both with verse references); web_en = World English "
        "Bible, darby_fr = Darby, rv1909_es = Reina-Valera 1909 (Bibles as prose); austen_en = "
        "Jane Austen's novels; shakespeare_en = Shakespeare's plays; styled_en, styled_fr, "
        "styled_es = one corpus per language with a style token (<|bible|>, <|novel|>, "
        "<|play|>) opening each document",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/corpora"),
        help="parent directory; each corpus is written to OUT/NAME/ (default: data/corpora)",
    )
    parser.add_argument(
        "--held-out-every",
        type=int,
        default=10,
        metavar="N",
        help="hold out every Nth book in canonical order for validation, by canonical index "
        "in every Bible (default: 10; the novels and plays keep their fixed rules)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown corpus {sorted(unknown)}; choose from {sorted(BUILDERS)}")
    for name in args.names or list(BUILDERS):
        manifest = BUILDERS[name](args.out / name, args.held_out_every)
        files = ", ".join(f"{k}: {v['chars']:,} chars" for k, v in manifest.files.items())
        print(f"{name}: {files} -> {args.out / name}")


if __name__ == "__main__":
    main()
