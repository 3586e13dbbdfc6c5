"""Entry point of `talkative`: collects the sub-commands listed in talkative.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from talkative.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkative",
        description="Talkative: photo -> caption -> story. Runs the models in this process.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"talkative.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
