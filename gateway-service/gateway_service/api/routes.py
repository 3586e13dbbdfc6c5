"""HTTP routes of the gateway: thin; the work is in stories.py, clients.py and card.py."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from gateway_service import stories
from gateway_service.api.deps import ChainDep
from gateway_service.schemas import (
    NGRAM_HELP,
    REPETITION_HELP,
    STYLE_HELP,
    ModelName,
    NoRepeatNgramSize,
    PublicModel,
    PublicModelList,
    RepetitionPenalty,
    RngSeed,
    StoryLength,
    StoryOptions,
    StoryResponse,
    Style,
    Temperature,
)
from talkative_common.caption_schema import MAX_BEAM_SIZE, BeamSize, CaptionResponse
from talkative_common.generation_schema import GenerationRequest, GenerationResponse
from talkative_common.openapi import photo_upload, problem_responses
from talkative_common.problems import Problem
from talkative_common.validation import only_form_fields

router = APIRouter(prefix="/v1")
STORY_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# What these routes raise themselves; talkative_common.openapi adds what the edges answer.
UNKNOWN_MODEL = "no such text model; /v1/models lists them"
NOT_A_PHOTO = "the photo is not a JPEG, PNG, WebP or GIF, is damaged, or has too many pixels"


@router.post(
    "/stories",
    response_model=StoryResponse,
    responses=problem_responses(
        {
            404: UNKNOWN_MODEL,
            422: f"{NOT_A_PHOTO}; or an option is out of range (max_new_tokens also by the "
            "model's own limit, in /v1/models) or unknown, or a style the model lacks",
            503: "caption-service or textgen-service is down or too slow",
        }
    ),
    openapi_extra=photo_upload("image"),
    tags=["stories"],
    summary="Photo in: caption, story and a card to share",
    dependencies=[
        Depends(
            only_form_fields(
                "image",
                "model",
                "max_new_tokens",
                "temperature",
                "seed",
                "style",
                "repetition_penalty",
                "no_repeat_ngram_size",
            )
        )
    ],
)
async def create_story(
    chain: ChainDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
    model: Annotated[
        ModelName | None, Form(description="text model; default: the server's")
    ] = None,
    max_new_tokens: Annotated[
        StoryLength | None,
        Form(description="story length in tokens; default: fitted to the model"),
    ] = None,
    temperature: Annotated[Temperature, Form(description="0 = greedy; higher = wilder")] = 0.7,
    seed: Annotated[RngSeed | None, Form(description="same seed, same story")] = None,
    style: Annotated[Style, Form(description=STYLE_HELP)] = "auto",
    repetition_penalty: Annotated[
        RepetitionPenalty | None, Form(description=REPETITION_HELP)
    ] = None,
    no_repeat_ngram_size: Annotated[NoRepeatNgramSize | None, Form(description=NGRAM_HELP)] = None,
) -> StoryResponse:
    # FastAPI checked each field against the same types (an empty one takes its default).
    options = StoryOptions(
        model=model,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        style=style,
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
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
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **problem_responses({404: "no such story: it never existed, or it has expired"}),
    },
    response_class=Response,
)
async def story_card(story_id: str, chain: ChainDep) -> Response:
    png = await stories.card_png(chain, story_id) if STORY_ID.match(story_id) else None
    if png is None:
        raise Problem(
            404,
            "No such story: it never existed or it has expired "
            f"(stories are kept {chain.settings.story_ttl_s:g} s); tell it again.",
        )
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
    response_model=CaptionResponse,
    responses=problem_responses(
        {
            422: f"{NOT_A_PHOTO}; or an unknown field, or `beam_size` outside "
            f"1-{MAX_BEAM_SIZE} (or not choosable with the captioner's export)",
            503: "caption-service is down or too slow",
        }
    ),
    openapi_extra=photo_upload("image"),
    tags=["pass-through"],
    summary="caption-service",
    dependencies=[Depends(only_form_fields("image", "beam_size"))],
)
async def captions(
    chain: ChainDep,
    image: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP or GIF")],
    beam_size: BeamSize = None,
) -> CaptionResponse:
    data = await image.read()
    # Decoded once, small; caption-service gets that copy as PNG, not the upload.
    _, photo_png = await asyncio.to_thread(chain.read_photo, data)
    body = await chain.captions.caption(
        photo_png, stories.png_name(image.filename or "image"), "image/png", beam_size=beam_size
    )
    return CaptionResponse.model_validate(body)


@router.post(
    "/generations",
    response_model=GenerationResponse,
    responses=problem_responses(
        {
            404: UNKNOWN_MODEL,
            422: "a field is out of range or unknown, or max_new_tokens is over the model's "
            "own limit (in /v1/models), or the prompt has no character the model knows",
            503: "textgen-service is down or too slow",
        }
    ),
    tags=["pass-through"],
    summary="textgen-service",
    description="The prompt goes as written: textgen-service fits it to the model, and "
    "`normalisation.prompt` in the answer is the text the model read.",
)
async def generations(body: GenerationRequest, chain: ChainDep) -> GenerationResponse:
    limit = chain.settings.max_new_tokens_limit
    if body.max_new_tokens > limit:
        raise Problem(
            422,
            f"max_new_tokens: at most {limit} (got {body.max_new_tokens})",
            errors=[{"field": "max_new_tokens", "message": f"at most {limit}"}],
        )
    await chain.catalogue.info(body.model)  # unknown model: 404 here, not downstream
    answer = await chain.textgen.generate(body.model_dump(exclude_none=True))
    return GenerationResponse.model_validate(answer)


@router.get(
    "/models",
    tags=["pass-through"],
    summary="The text models textgen-service serves: a public summary of each model card",
    response_model=PublicModelList,
    responses=problem_responses({503: "textgen-service is down or too slow"}),
)
async def models(chain: ChainDep) -> PublicModelList:
    listing = await chain.catalogue.listing()
    return PublicModelList(
        models=[PublicModel.from_textgen(m) for m in listing.models], default=listing.default
    )
