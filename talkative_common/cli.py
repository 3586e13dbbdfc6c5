"""How every `python -m ...` command of the project opens its argument parser.

The usage line names the command as it is typed, and the description is the docstring of
the command's `main`, so what a command does is written once, beside its code, and read
both by `--help` and by whoever opens the module.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from typing import Any


def command_parser(
    main: Callable[..., object], *, prog: str | None = None, **options: Any
) -> argparse.ArgumentParser:
    """The ArgumentParser of the command whose entry point is `main`: described by main's
    docstring, its usage `python -m <main's module>` (the module's own name also when it
    runs as __main__), unless `prog` names it otherwise (a script run by path).
    `options` go to ArgumentParser as they are (parents, formatter_class, a description
    other than main's docstring...)."""
    if prog is None:
        module = main.__module__
        if module == "__main__":  # run with -m: the spec keeps the name it was asked by
            spec = sys.modules["__main__"].__spec__
            module = spec.name if spec is not None else module
        prog = "python -m " + module.removesuffix(".__main__")
    options.setdefault("description", inspect.getdoc(main))
    return argparse.ArgumentParser(prog=prog, **options)
