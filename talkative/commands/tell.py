"""`talkative tell`: photo -> caption -> story, the whole chain in this process.

caption-service, textgen-service and the gateway's chain are the real ones; they
talk over httpx's in-memory ASGI transport instead of sockets, so no server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from services.problems import Problem
from services.validation import describe_validation_errors
from talkative.commands.options import add_models_dir

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway_service.schemas import StoryOptions, StoryResponse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tell",
        help="tell a story about a photo (caption, seed, story), in this process",
        description="Caption IMAGE, frame the caption as a seed for the text model and continue "
        "it, with every model loaded in this process (no server needed). Prints the caption "
        "and the story; --card also writes the story card. See docs/gateway.md.",
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
        return 2
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror}", file=sys.stderr)
        return 2
    content_type = mimetypes.guess_type(args.image.name)[0] or "application/octet-stream"
    try:
        story, card = asyncio.run(
            _tell(args.models_dir, data, args.image.name, content_type, options, args.card)
        )
    except Problem as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
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


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[Any]:
    """The app's lifespan (model loading), then an in-memory transport to it."""
    import httpx

    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


async def _tell(
    models_dir: Path,
    data: bytes,
    filename: str,
    content_type: str,
    options: StoryOptions,
    card_path: Path | None,
) -> tuple[StoryResponse, bytes | None]:
    from gateway_service import stories
    from gateway_service.settings import GatewaySettings
    from services.images import read_image

    # Fail fast on a bad photo, before any model loads (decoded small: only a check).
    # One story, in this process: its store is memory, whatever GATEWAY_STORE_URL says.
    settings = GatewaySettings(
        caption_url="http://caption", textgen_url="http://textgen", store_url="memory://"
    )
    read_image(
        data,
        max_pixels=settings.max_image_pixels,
        max_side=settings.image_max_side,
        max_bytes=settings.max_image_bytes,
    )

    from caption_service.main import create_app as caption_app
    from caption_service.settings import CaptionSettings
    from gateway_service.main import build_chain
    from textgen_service.main import create_app as textgen_app
    from textgen_service.settings import TextgenSettings

    # Load only the text model asked for (or the default one), not every model on disk.
    model = options.model or TextgenSettings().default_model
    textgen_settings = TextgenSettings(
        model_repository=models_dir, models=[model], default_model=model
    )
    async with AsyncExitStack() as stack:
        caption_transport = await stack.enter_async_context(
            _running(caption_app(CaptionSettings(model_repository=models_dir)))
        )
        textgen_transport = await stack.enter_async_context(_running(textgen_app(textgen_settings)))
        chain = build_chain(settings, caption_transport, textgen_transport)
        stack.push_async_callback(chain.close)
        story = await stories.tell(chain, data, filename, content_type, options)
        card = None
        if card_path is not None:
            card = await stories.card_png(chain, story.id)
        return story, card
