"""`talkative tell`: tell a story about a photo (caption, prompt, story), in this process.

Caption IMAGE, frame the caption as a prompt for the text model and continue it, with
every model loaded in this process (no server needed). Prints the caption and the story;
--card also writes the story card. The gateway's POST /v1/stories does the work, through
the three services' apps on an in-memory transport (talkative/stack.py), with their
checks and limits (GATEWAY_*, CAPTION_* and TEXTGEN_* environment variables included).
See docs/gateway.md.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway_service.schemas import StoryOptions
from talkative.commands.options import add_models_dir, add_request_options, request_from_args
from talkative.errors import EXIT_USAGE, report
from talkative_common.errors import TalkativeError

if TYPE_CHECKING:
    from gateway_service.schemas import StoryResponse
    from talkative.stack import Stack


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, metavar="IMAGE", help="the photo (JPEG, PNG, WebP, GIF)")
    p.add_argument(
        "--model",
        default=None,
        help="text model, e.g. char_lstm_en, char_lstm_fr, gpt2_en (default: textgen-service's "
        "default, char_lstm_en)",
    )
    add_request_options(
        p,
        StoryOptions,
        (
            "style",
            "max_new_tokens",
            "temperature",
            "seed",
            "repetition_penalty",
            "no_repeat_ngram_size",
        ),
        defaults={"max_new_tokens": "the gateway's default for the model"},
    )
    p.add_argument(
        "--card", type=Path, default=None, metavar="PNG", help="also write the story card here"
    )
    add_models_dir(p)


def run(args: argparse.Namespace) -> int:
    options = request_from_args(StoryOptions, args)
    if options is None:
        return EXIT_USAGE
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    from talkative.stack import Stack

    # Load only the text model asked for (or the default one), not every model on disk.
    text_model = options.model or Stack(args.models_dir).textgen_settings().default_model
    stack = Stack(args.models_dir, text_models=[text_model], default_text_model=text_model)
    content_type = mimetypes.guess_type(args.image.name)[0] or "application/octet-stream"
    try:
        story, card = asyncio.run(
            _tell(stack, data, args.image.name, content_type, options, args.card is not None)
        )
    except TalkativeError as exc:
        return report(exc)
    print(f"Caption: {story.caption}")
    print()
    print(story.story)
    print(
        f"[{story.model}, style {story.prompt.style}, seed {story.seed}, "
        f"{story.timings['total_ms'] / 1000:.1f} s]",
        file=sys.stderr,
    )
    if args.card is not None and card is not None:
        args.card.write_bytes(card)
        print(f"card written to {args.card} (alt text: {story.alt_text})", file=sys.stderr)
    return 0


async def _tell(
    stack: Stack,
    data: bytes,
    filename: str,
    content_type: str,
    options: StoryOptions,
    want_card: bool,
) -> tuple[StoryResponse, bytes | None]:
    from gateway_service.schemas import StoryResponse
    from talkative.stack import call
    from talkative_common.images import probe_image

    # Fail fast on a file that is no photo, before any model loads: the header only, so
    # the gateway's decode stays the one full decode of this story.
    probe_image(data, max_pixels=stack.gateway_settings().max_image_pixels)
    # The form fields are StoryOptions' own names, as the route reads them.
    form = {name: str(value) for name, value in options.model_dump(exclude_none=True).items()}
    async with stack.gateway() as gateway:
        body = await call(
            gateway,
            "POST",
            "/v1/stories",
            files={"image": (filename, data, content_type)},
            data=form,
        )
        story = StoryResponse.model_validate(body)
        card = (await call(gateway, "GET", story.card_url)).content if want_card else None
    return story, card
