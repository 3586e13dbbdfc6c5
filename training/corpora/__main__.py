"""Build the offline corpora: python -m training.corpora --help."""

from __future__ import annotations

from pathlib import Path

from talkative_common.cli import command_parser
from training.corpora import kjv, segond

BUILDERS = {"kjv_en": kjv.build, "segond_fr": segond.build}


def main(argv: list[str] | None = None) -> None:
    """Build clean UTF-8 training corpora from texts installed on this machine (no network). Each
    corpus gets train.txt, valid.txt (whole books held out) and manifest.json with sizes and SHA-256
    checksums."""
    parser = command_parser(main)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        default=[],
        help="corpora to build (default: all): kjv_en = King James Bible, "
        "segond_fr = Louis Segond 1910",
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
        help="hold out every Nth book in canonical order for validation (default: 10)",
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
