"""`talkative caption`: caption a photo, in this process.

Caption IMAGE with caption-service run in this process (no server needed) and print its
ranked captions, best first, each with its log-probability. The service is the real one
(talkative/stack.py): its app, its photo intake (decoded no larger than
CAPTION_IMAGE_MAX_SIDE, as for every upload) and its POST /v1/captions on an in-memory
transport, with the same checks and limits (CAPTION_* environment variables included),
so this command offers exactly what the HTTP API does. See docs/captioner.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from talkative.commands.options import add_models_dir
from talkative.errors import EXIT_USAGE, report
from talkative_common.errors import TalkativeError

if TYPE_CHECKING:
    from talkative.stack import Stack
    from talkative_common.caption_schema import CaptionResponse


def _beam_size(text: str) -> int:
    from talkative_common.caption_schema import MAX_BEAM_SIZE

    value = int(text)
    if not 1 <= value <= MAX_BEAM_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BEAM_SIZE}, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, metavar="IMAGE", help="the photo (JPEG, PNG, WebP, GIF)")
    p.add_argument(
        "--beam-size",
        type=_beam_size,
        default=None,
        metavar="K",
        help="beam width, 1 (greedy) to 10: how many captions are searched and printed; "
        "the API's `beam_size` form field (default: the width the model was exported "
        "with, 3)",
    )
    p.add_argument(
        "--model",
        default="captioner",
        help="captioner name in the model repository: caption-service's CAPTION_MODEL "
        "(default: %(default)s)",
    )
    add_models_dir(p)


def run(args: argparse.Namespace) -> int:
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    from talkative.stack import Stack, require_model

    stack = Stack(args.models_dir, caption_model=args.model)
    try:
        require_model(args.models_dir, args.model)
    except TalkativeError as exc:
        return report(exc)
    try:
        response = asyncio.run(_caption(stack, args.image.name, data, args.beam_size))
    except TalkativeError as exc:
        return report(exc, f"{args.image}: ")
    for rank, caption in enumerate(response.captions, 1):
        print(f"{rank}. {caption.text}  (log-probability {caption.log_prob:.2f})")
    return 0


async def _caption(
    stack: Stack, filename: str, data: bytes, beam_size: int | None
) -> CaptionResponse:
    from talkative.stack import call
    from talkative_common.caption_schema import CaptionResponse
    from talkative_common.images import probe_image

    # A file that is no photo is refused from its header, before the captioner loads.
    probe_image(data, max_pixels=stack.caption_settings().max_image_pixels)
    form = {} if beam_size is None else {"beam_size": str(beam_size)}
    async with stack.caption_service() as service:
        body = await call(
            service,
            "POST",
            "/v1/captions",
            files={"image": (filename, data, "application/octet-stream")},
            data=form,
        )
    return CaptionResponse.model_validate(body)
