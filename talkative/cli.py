"""Entry point of `talkative`: collects the sub-commands listed in talkative.commands."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from types import ModuleType

from talkative.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkative",
        description="Talkative: photo -> caption -> story. Runs the models in this process.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        add_command(sub, importlib.import_module(f"talkative.commands.{name}"))
    return parser


def add_command(sub: argparse._SubParsersAction, module: ModuleType) -> None:
    """The sub-command a module of talkative.commands describes (see its docstring)."""
    title, _, description = inspect.cleandoc(module.__doc__ or "").partition("\n\n")
    name, _, summary = title.partition(": ")
    p = sub.add_parser(
        name.strip("`").removeprefix("talkative "),
        help=summary.rstrip("."),
        description=description,
        epilog=getattr(module, "EPILOG", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the paragraphs
    )
    module.add_arguments(p)
    p.set_defaults(func=module.run)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
