"""`talkative generate`: continue a prompt with a text model, in this process.

Generate a continuation of PROMPT with a text model loaded in this process (no server
needed) and print the prompt as the model read it, followed by the new text. The prompt
is first fitted to the model's alphabet (docs/textgen.md). textgen-service's POST
/v1/generations does the work, through its app on an in-memory transport
(talkative/stack.py), with its checks and limits (TEXTGEN_* environment variables
included); each option is the request field of the same name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from talkative.commands.options import add_models_dir, add_request_options, request_from_args
from talkative.errors import EXIT_USAGE, report
from talkative_common.errors import TalkativeError
from talkative_common.generation_schema import GenerationRequest, GenerationResponse

if TYPE_CHECKING:
    from talkative.stack import Stack


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="char_lstm_en",
        help="model name in the repository, e.g. char_lstm_en, char_lstm_fr (default: %(default)s)",
    )
    p.add_argument(
        "--prompt",
        required=True,
        help="the text to continue, as written (textgen-service fits it to the model)",
    )
    add_request_options(
        p,
        GenerationRequest,
        (
            "max_new_tokens",
            "temperature",
            "top_k",
            "top_p",
            "seed",
            "style",
            "repetition_penalty",
            "no_repeat_ngram_size",
        ),
        defaults={"style": "none: no style token"},
    )
    p.set_defaults(max_new_tokens=300)  # longer than the API's default: a person reads it
    add_models_dir(p)


def run(args: argparse.Namespace) -> int:
    request = request_from_args(GenerationRequest, args)
    if request is None:
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

    async with stack.textgen_service() as textgen:
        body = await call(
            textgen,
            "POST",
            "/v1/generations",
            json=request.model_dump(mode="json", exclude_none=True),
        )
    return GenerationResponse.model_validate(body)
