"""`talkative tell`: photo -> caption -> story, the whole stack in this process.

caption-service, textgen-service and the gateway are the real apps (talkative/stack.py);
they talk over httpx's in-memory ASGI transport instead of sockets, so no server runs,
and the story is asked for as any client asks: POST /v1/stories, then the card's URL.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from talkative.commands.options import add_models_dir
from talkative.errors import EPILOG, EXIT_USAGE, report
from talkative_common.errors import TalkativeError
from talkative_common.validation import describe_validation_errors

if TYPE_CHECKING:
    from gateway_service.schemas import StoryOptions, StoryResponse
    from talkative.stack import Stack


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tell",
        help="tell a story about a photo (caption, seed, story), in this process",
        description="Caption IMAGE, frame the caption as a seed for the text model and continue "
        "it, with every model loaded in this process (no server needed). Prints the caption "
        "and the story; --card also writes the story card. The gateway's POST /v1/stories "
        "does the work, with its checks and limits (GATEWAY_*, CAPTION_* and TEXTGEN_* "
        "environment variables included). See docs/gateway.md.",
        epilog=EPILOG,
    )
    p.add_argument("image", type=Path, metavar="IMAGE", help="the photo (JPEG, PNG, WebP, GIF)")
    p.add_argument(
        "--model",
        default=None,
        help="text model, e.g. char_lstm_en, char_lstm_fr, gpt2_en (default: textgen-service's "
        "default, char_lstm_en)",
    )
    p.add_argument(
        "--style",
        default="auto",
        choices=["auto", "verse", "screenplay", "tale", "plain"],
        help="how the caption is framed as a seed; auto follows the model's corpus "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        metavar="N",
        help="story length in tokens (characters for char models) (default: 300)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.7,
        metavar="T",
        help="0 = always the likeliest; up to 2 = wilder (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="random seed: the same seed gives the same story (default: random, printed)",
    )
    p.add_argument(
        "--card", type=Path, default=None, metavar="PNG", help="also write the story card here"
    )
    add_models_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway_service.schemas import StoryOptions

    try:
        options = StoryOptions(
            model=args.model,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
            style=args.style,
        )
    except ValidationError as exc:
        for err in describe_validation_errors(exc.errors()):
            print(f"error: --{err['field'].replace('_', '-')}: {err['message']}", file=sys.stderr)
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
