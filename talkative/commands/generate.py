"""`talkative generate`: continue a prompt with a text model, through textgen-service run in
this process (talkative/stack.py): its app and POST /v1/generations on an in-memory
transport, so this command offers exactly what the HTTP API does."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from talkative.commands.options import add_models_dir
from talkative.errors import EPILOG, EXIT_USAGE, report
from talkative_common.errors import TalkativeError
from talkative_common.validation import describe_validation_errors

if TYPE_CHECKING:
    from talkative.stack import Stack
    from textgen_service.schemas import GenerationRequest, GenerationResponse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a seed text with a text model",
        description="Generate a continuation of PROMPT with a text model loaded in this process "
        "(no server needed). The prompt is first fitted to the model's alphabet; see "
        "docs/textgen.md. Prints the prompt as the model read it, followed by the new text. "
        "textgen-service's POST /v1/generations does the work, with its checks and limits "
        "(TEXTGEN_* environment variables included); each option is the request field of "
        "the same name.",
        epilog=EPILOG,
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
        return EXIT_USAGE
    from talkative.stack import Stack, require_model

    try:
        require_model(args.models_dir, args.model)
        stack = Stack(args.models_dir, text_models=[args.model], default_text_model=args.model)
        response = asyncio.run(_generate(stack, request))
    except TalkativeError as exc:
        return report(exc)
    print(response.normalisation.prompt + response.text)
    print(f"[{response.model}, seed {response.seed}, {response.tokens} tokens]", file=sys.stderr)
    return 0


async def _generate(stack: Stack, request: GenerationRequest) -> GenerationResponse:
    from talkative.stack import call
    from textgen_service.schemas import GenerationResponse

    async with stack.textgen_service() as textgen:
        body = await call(
            textgen,
            "POST",
            "/v1/generations",
            json=request.model_dump(mode="json", exclude_none=True),
        )
    return GenerationResponse.model_validate(body)
