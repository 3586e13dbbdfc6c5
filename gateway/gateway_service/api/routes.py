"""HTTP routes of the gateway: thin; the work is in stories.py, clients.py and card.py."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from gateway_service import stories
from gateway_service.api.deps import ChainDep
from gateway_service.schemas import (
    GenerationRequest,
    PublicModel,
    PublicModelList,
    StoryOptions,
    StoryResponse,
)
from services.images import read_image
from services.problems import Problem
from services.validation import describe_validation_errors, only_form_fields

router = APIRouter(prefix="/v1")
STORY_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in {
        404: "unknown model or story",
        413: "body too large",
        422: "invalid image or options",
        503: "a dependency is down or too slow (Retry-After says when to try again)",
    }.items()
}


def _invalid(exc: ValidationError) -> Problem:
    errors = describe_validation_errors(exc.errors())
    return Problem(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def _blank_to_none(value: str | None) -> str | None:
    return value if value not in ("", None) else None


@router.post(
    "/stories",
    response_model=StoryResponse,
    responses=PROBLEMS,
    tags=["stories"],
    summary="Photo in: caption, story and a card to share",
    dependencies=[
        Depends(
            only_form_fields("image", "model", "max_new_tokens", "temperature", "seed", "style")
        )
    ],
)
async def create_story(
    chain: ChainDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
    model: Annotated[str | None, Form(description="text model; default: the server's")] = None,
    max_new_tokens: Annotated[str | None, Form(description="story length in tokens")] = None,
    temperature: Annotated[str | None, Form(description="0 to 2")] = None,
    seed: Annotated[str | None, Form(description="same seed, same story")] = None,
    style: Annotated[str | None, Form(description="auto, verse, screenplay, tale or plain")] = None,
) -> StoryResponse:
    fields = {
        "model": model,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "seed": seed,
        "style": style,
    }
    try:
        options = StoryOptions.model_validate(
            {k: v for k, v in fields.items() if _blank_to_none(v) is not None}
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    data = await image.read()
    return await stories.tell(
        chain,
        data,
        image.filename or "image",
        image.content_type or "application/octet-stream",
        options,
    )


@router.get(
    "/stories/{story_id}/card.png",
    tags=["stories"],
    summary="The story card: photo, caption and story on a 1080 x 1350 PNG",
    responses={200: {"content": {"image/png": {}}}, 404: PROBLEMS[404]},
    response_class=Response,
)
async def story_card(story_id: str, chain: ChainDep) -> Response:
    stored = chain.store.get(story_id) if STORY_ID.match(story_id) else None
    if stored is None:
        raise Problem(
            404,
            "No such story: it never existed or it has expired "
            f"(stories are kept {chain.settings.story_ttl_s:g} s); tell it again.",
        )
    png = await asyncio.to_thread(stories.render, stored)
    return Response(
        png,
        media_type="image/png",
        headers={
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": f'inline; filename="talkative-{story_id}.png"',
        },
    )


@router.post(
    "/captions",
    responses=PROBLEMS,
    tags=["pass-through"],
    summary="caption-service",
    dependencies=[Depends(only_form_fields("image"))],
)
async def captions(
    chain: ChainDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
) -> dict[str, Any]:
    data = await image.read()
    await asyncio.to_thread(read_image, data, max_pixels=chain.settings.max_image_pixels)
    return await chain.captions.caption(
        data, image.filename or "image", image.content_type or "application/octet-stream"
    )


@router.post("/generations", responses=PROBLEMS, tags=["pass-through"], summary="textgen-service")
async def generations(body: GenerationRequest, chain: ChainDep) -> dict[str, Any]:
    limit = chain.settings.max_new_tokens_limit
    if body.max_new_tokens > limit:
        raise Problem(
            422,
            f"max_new_tokens: at most {limit} (got {body.max_new_tokens})",
            errors=[{"field": "max_new_tokens", "message": f"at most {limit}"}],
        )
    await chain.catalogue.info(body.model)  # unknown model: 404 here, not downstream
    return await chain.textgen.generate(body.model_dump(exclude_none=True))


@router.get(
    "/models",
    tags=["pass-through"],
    summary="The text models textgen-service serves: a public summary of each model card",
    response_model=PublicModelList,
)
async def models(chain: ChainDep) -> PublicModelList:
    listing = await chain.catalogue.listing()
    return PublicModelList(
        models=[PublicModel.from_textgen(m) for m in listing.get("models", [])],
        default=str(listing.get("default", "")),
    )
