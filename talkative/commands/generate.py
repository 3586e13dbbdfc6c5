"""`talkative generate`: continue a seed text with a text model, in this process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from services.model_client import ModelNotFound, ModelRepository
from services.problems import Problem
from services.validation import describe_validation_errors
from talkative.commands.options import add_models_dir

if TYPE_CHECKING:
    from textgen_service.schemas import GenerationRequest, GenerationResponse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a seed text with a text model",
        description="Generate a continuation of PROMPT with a text model loaded in this process "
        "(no server needed). The prompt is first fitted to the model's alphabet; see "
        "docs/textgen.md. Prints the prompt as the model read it, followed by the new text.",
    )
    p.add_argument(
        "--model",
        default="char_lstm_en",
        help="model name in the repository, e.g. char_lstm_en, char_lstm_fr (default: %(default)s)",
    )
    p.add_argument("--prompt", required=True, help="seed text the story starts from")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=300,
        metavar="N",
        help="how many tokens (characters for char models) to add (default: %(default)s)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.7,
        metavar="T",
        help="0 = always the likeliest character; up to 2 = wilder (default: %(default)s)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample only among the K likeliest tokens; 0 = no limit (default: %(default)s)",
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="sample from the smallest set of tokens holding mass P; 1 = off "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="random seed: the same seed gives the same text (default: random, printed)",
    )
    add_models_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from textgen_service.schemas import GenerationRequest

    try:
        request = GenerationRequest(
            prompt=args.prompt,
            model=args.model,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
        )
    except ValidationError as exc:
        for err in describe_validation_errors(exc.errors()):
            print(f"error: --{err['field'].replace('_', '-')}: {err['message']}", file=sys.stderr)
        return 2
    repository = ModelRepository(args.models_dir)
    if args.model not in repository.models():
        print(
            f"error: no model {args.model!r} in {args.models_dir}; available: "
            f"{', '.join(repository.models()) or 'none'}",
            file=sys.stderr,
        )
        return 2
    try:
        response = asyncio.run(_generate(request, repository))
    except Problem as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except ModelNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(response.normalisation.prompt + response.text)
    print(f"[{response.model}, seed {response.seed}, {response.tokens} tokens]", file=sys.stderr)
    return 0


async def _generate(request: GenerationRequest, repository: ModelRepository) -> GenerationResponse:
    from services.model_client.inprocess import InProcessClient
    from textgen_service import generation
    from textgen_service.registry import TextModelRegistry
    from textgen_service.settings import TextgenSettings

    settings = TextgenSettings(
        models=[request.model],
        default_model=request.model,
        model_repository=repository.root,
    )
    client = InProcessClient(repository)
    try:
        registry = await TextModelRegistry.load(settings, client, repository)
        return await generation.generate(request, registry, settings)
    finally:
        await client.close()
