"""`talkative caption`: ranked captions of a photo, with the captioner loaded in this process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from services.images import DEFAULT_MAX_PIXELS
from services.model_client import ModelNotFound, ModelRepository
from services.problems import Problem
from talkative.commands.options import add_models_dir

if TYPE_CHECKING:
    from PIL import Image

    from caption_service.schemas import Caption

MAX_BEAM = 10


def _beam_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_BEAM:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BEAM}, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "caption",
        help="caption a photo, in this process",
        description="Caption IMAGE with the captioner loaded in this process (no server "
        "needed) and print its ranked captions, best first, each with its log-probability. "
        "See docs/captioner.md.",
    )
    p.add_argument("image", type=Path, metavar="IMAGE", help="the photo (JPEG, PNG, WebP, GIF)")
    p.add_argument(
        "--beam-size",
        type=_beam_size,
        default=None,
        metavar="K",
        help=f"beam width, 1 (greedy) to {MAX_BEAM}: how many captions are searched and "
        "printed (default: the width the model was exported with, 3)",
    )
    p.add_argument(
        "--model",
        default="captioner",
        help="captioner name in the model repository (default: %(default)s)",
    )
    add_models_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from services.images import read_image

    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror}", file=sys.stderr)
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
        photo = read_image(data, max_pixels=DEFAULT_MAX_PIXELS)
        captions = asyncio.run(_caption(args.model, repository, photo, args.beam_size))
    except Problem as exc:
        print(f"error: {args.image}: {exc.detail}", file=sys.stderr)
        return 2
    except ModelNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for rank, caption in enumerate(captions, 1):
        print(f"{rank}. {caption.text}  (log-probability {caption.log_prob:.2f})")
    return 0


async def _caption(
    name: str, repository: ModelRepository, photo: Image.Image, beam_size: int | None
) -> list[Caption]:
    from caption_service.captioner import CaptionModel
    from services.model_client.inprocess import InProcessClient

    client = InProcessClient(repository)
    try:
        model = CaptionModel(name, client, repository)
        await model.verify()
        return await model.caption(photo, beam_size)
    finally:
        await client.close()
