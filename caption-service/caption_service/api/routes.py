"""HTTP routes of caption-service: thin, the photo checks are in services.images.

`model` is the captioner version serving when the request arrived; the answer's
`version` is the one that produced its captions, even if the label moves meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from caption_service.api.deps import ModelDep, SettingsDep
from caption_service.schemas import CaptionResponse
from services.images import read_image
from services.validation import only_form_fields

router = APIRouter(prefix="/v1", tags=["captions"])
PROBLEMS = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in {
        413: "upload too large",
        422: "not a photo, damaged, too many pixels, or no `image` field",
        503: "captioner unavailable",
    }.items()
}


@router.post(
    "/captions",
    response_model=CaptionResponse,
    responses=PROBLEMS,  # type: ignore[arg-type]
    summary="Ranked captions of a photo",
    dependencies=[Depends(only_form_fields("image"))],
)
async def create_captions(
    model: ModelDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
) -> CaptionResponse:
    data = await image.read()
    # Decoding is CPU work: off the event loop, so health checks still answer.
    photo = await asyncio.to_thread(read_image, data, max_pixels=settings.max_image_pixels)
    captions = await model.caption(photo)
    return CaptionResponse(captions=captions, model=model.name, version=model.version)
