"""Options several sub-commands share, so they read and mean the same everywhere.

The knobs of a request (`--temperature`, `--seed`...) are the fields of the HTTP API's own
schema (GenerationRequest for `generate`, StoryOptions for `tell`): `add_request_options`
takes each option's type, choices and default from the field, and `request_from_args`
builds the request, so the command line can offer nothing the API does not, and refuses
what the API would refuse, naming the option.
"""

from __future__ import annotations

import argparse
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from talkative_common import DEFAULT_MODEL_REPOSITORY
from talkative_common.validation import describe_validation_errors

M = TypeVar("M", bound=BaseModel)


def add_models_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir",
        type=Path,
        default=DEFAULT_MODEL_REPOSITORY,
        metavar="DIR",
        help="model repository laid out as NAME/VERSION/ (default: serving/models)",
    )


@dataclass(frozen=True)
class Knob:
    """How a request field reads on the command line: `--max-new-tokens N`."""

    metavar: str | None
    help: str


# One wording per knob, whichever command offers it.
KNOBS = {
    "max_new_tokens": Knob("N", "how many tokens (characters for char models) to add"),
    "temperature": Knob("T", "0 = always the likeliest token; up to 2 = wilder"),
    "top_k": Knob("K", "sample only among the K likeliest tokens; 0 = no limit"),
    "top_p": Knob("P", "sample from the smallest set of tokens holding mass P; 1 = off"),
    "seed": Knob("S", "random seed: the same seed gives the same text (default: random, printed)"),
    "style": Knob(
        None,
        "the genre: one of the model's styles in /v1/models (bible, novel, play for a styled "
        "GPT-2); for a story also auto (the model's first genre, or its corpus's frame), plain "
        "(the caption alone) and, for a model without genres, verse, screenplay or tale",
    ),
    "repetition_penalty": Knob(
        "R", "1 = off; above 1 makes tokens already in the text less likely (default: the model's)"
    ),
    "no_repeat_ngram_size": Knob(
        "N", "never repeat an N-token sequence; 0 = off (default: the model's)"
    ),
}


def _option_type(annotation: Any) -> tuple[type, tuple[Any, ...] | None]:
    """The argparse type (and choices) of a field: int, float, str or a Literal's values."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return type(args[0]), tuple(args)
    if args:  # Optional[X], Annotated[X, ...]
        return _option_type(args[0])
    return annotation, None


def add_request_options(
    p: argparse.ArgumentParser,
    schema: type[BaseModel],
    names: tuple[str, ...],
    *,
    defaults: dict[str, str] | None = None,
) -> None:
    """`--name` for each request field in `names`, typed and defaulted by the schema.

    `defaults` says in words what an omitted field means where the schema's default is
    None (the service's default model, the service's default length).
    """
    for name in names:
        field, knob = schema.model_fields[name], KNOBS[name]
        kind, choices = _option_type(field.annotation)
        default = None if field.is_required() else field.default
        said = (defaults or {}).get(name, "%(default)s")
        help_text = knob.help if "default:" in knob.help else f"{knob.help} (default: {said})"
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            choices=choices,
            default=default,
            metavar=knob.metavar,
            help=help_text,
        )


def request_from_args(schema: type[M], args: argparse.Namespace, **fields: Any) -> M | None:
    """The request from the options of the schema's fields (plus `fields`), or None after
    printing, per refused option, why (the API's own validation, worded for `--option`)."""
    values = {n: getattr(args, n) for n in schema.model_fields if hasattr(args, n)}
    try:
        return schema(**(values | fields))
    except ValidationError as exc:
        for err in describe_validation_errors(exc.errors()):
            print(f"error: --{err['field'].replace('_', '-')}: {err['message']}", file=sys.stderr)
        return None
