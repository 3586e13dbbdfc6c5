"""HTTP routes of caption-service: thin, the photo checks are in talkative_common.images.

`model` is the captioner version serving when the request arrived; the answer's
`version` is the one that produced its captions, even if the label moves meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from caption_service.api.deps import DecodeBudgetDep, ModelDep, SettingsDep
from talkative_common.caption_schema import MAX_BEAM_SIZE, BeamSize, CaptionResponse
from talkative_common.images import read_image
from talkative_common.openapi import photo_upload, problem_responses
from talkative_common.validation import only_form_fields

router = APIRouter(prefix="/v1", tags=["captions"])
# What the route raises itself; talkative_common.openapi adds what the edges answer.
PROBLEMS = problem_responses(
    {
        422: "not a JPEG, PNG, WebP or GIF photo, damaged, too many pixels, no `image` "
        f"field, an unknown field, or `beam_size` outside 1-{MAX_BEAM_SIZE} (or not choosable "
        "with this captioner's export)",
        503: "the captioner is loading or unavailable, or big photos hold the decode budget",
    }
)


@router.post(
    "/captions",
    response_model=CaptionResponse,
    responses=PROBLEMS,
    openapi_extra=photo_upload("image"),
    summary="Ranked captions of a photo",
    dependencies=[Depends(only_form_fields("image", "beam_size"))],
)
async def create_captions(
    model: ModelDep,
    settings: SettingsDep,
    budget: DecodeBudgetDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
    beam_size: BeamSize = None,
) -> CaptionResponse:
    data = await image.read()
    # Decoding is CPU work: off the event loop, so health checks still answer. It is
    # decoded no larger than the captioner needs (its graph resizes to 224 x 224 anyway).
    photo = await asyncio.to_thread(
        read_image,
        data,
        max_pixels=settings.max_image_pixels,
        max_side=settings.image_max_side,
        max_bytes=settings.max_image_bytes,
        budget=budget,
    )
    captions = await model.caption(photo, beam_size)
    return CaptionResponse(captions=captions, model=model.name, version=model.version)
