"""The story use case: validate the photo, caption it, build the prompt, generate, keep it."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import PurePath

from PIL import Image, ImageStat

from gateway_service import card
from gateway_service.catalogue import ModelCatalogue
from gateway_service.clients import CallTiming, CaptionClient, TextgenClient
from gateway_service.prompts import UnknownStyle, allowed_styles, make_prompt, profile_from_model
from gateway_service.schemas import PromptInfo, StoryOptions, StoryResponse
from gateway_service.settings import GatewaySettings
from gateway_service.store import StoredStory, StoryStore
from talkative_common.errors import InvalidInput
from talkative_common.generation_schema import GenerationRequest, GenerationResponse
from talkative_common.images import DecodeBudget, read_image, to_png

_SENTENCE_END = re.compile(r"[.!?](?=[\s\"')]|$)")
NIGHT_LUMINANCE = 60  # mean luma (0-255) below which a scene heading says NIGHT


@dataclass
class Chain:
    """Everything a story needs, built once per app (or once per `talkative tell`)."""

    settings: GatewaySettings
    captions: CaptionClient
    textgen: TextgenClient
    catalogue: ModelCatalogue
    store: StoryStore
    budget: DecodeBudget = field(init=False)

    def __post_init__(self) -> None:
        # One chain per app, so one budget per gateway process: big uploads take turns.
        self.budget = DecodeBudget(
            self.settings.decode_budget_bytes, timeout_s=self.settings.queue_timeout_s
        )

    def read_photo(self, data: bytes) -> tuple[Image.Image, bytes]:
        return read_photo(self.settings, data, self.budget)

    async def close(self) -> None:
        await self.captions.close()
        await self.textgen.close()
        await self.store.close()


def read_photo(
    settings: GatewaySettings, data: bytes, budget: DecodeBudget | None = None
) -> tuple[Image.Image, bytes]:
    """The upload decoded once, no larger than the captioner and the card need, and the
    PNG of that copy: what caption-service gets instead of the upload. Blocking."""
    photo = read_image(
        data,
        max_pixels=settings.max_image_pixels,
        max_side=max(settings.image_max_side, settings.card_photo_max_side),
        max_bytes=settings.max_image_bytes,
        budget=budget,
    )
    return photo, to_png(photo)


def trim_story(prompt: str, text: str) -> tuple[str, bool]:
    """prompt + text, cut after the last whole sentence of the generated part, if it has one."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] < len(text.rstrip()):
        return (prompt + text[: ends[-1]]).strip(), True
    return (prompt + text).strip(), False


def is_night(photo: Image.Image) -> bool:
    # Shrink first, then grey: the mean is the same and a 32 x 32 conversion costs nothing.
    small = photo.resize((32, 32), Image.Resampling.BOX).convert("L")
    return float(ImageStat.Stat(small).mean[0]) < NIGHT_LUMINANCE


def png_name(filename: str) -> str:
    """The name the re-encoded photo goes to caption-service under."""
    return f"{PurePath(filename).stem or 'photo'}.png"


def card_url(settings: GatewaySettings, story_id: str) -> str:
    path = f"/v1/stories/{story_id}/card.png"
    return settings.public_url.rstrip("/") + path if settings.public_url else path


async def tell(
    chain: Chain, data: bytes, filename: str, content_type: str, options: StoryOptions
) -> StoryResponse:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 2)
        return now

    # 1. The photo is checked here, so a bad upload never reaches the captioner, and
    # decoded once, small: the captioner, the card and the night check share that copy.
    # `content_type` is the client's word only; the type is sniffed from the bytes.
    photo, photo_png = await asyncio.to_thread(chain.read_photo, data)
    mark = lap("validate_ms", started)

    # The card's copy of the photo is made while the models work; it only waits at the end.
    card_photo = asyncio.ensure_future(
        asyncio.to_thread(card.photo_for_card, photo, chain.settings.card_photo_max_side)
    )
    try:
        # 2. The model and the knobs, before any model runs.
        info = await chain.catalogue.info(options.model)
        profile = profile_from_model(info)
        cap = info.max_new_tokens or chain.settings.max_new_tokens_limit
        limit = min(chain.settings.max_new_tokens_limit, cap)
        length = options.max_new_tokens or min(chain.settings.default_max_new_tokens, limit)
        if length > limit:
            raise InvalidInput(
                f"max_new_tokens: at most {limit} for {profile.name} (got {length})",
                errors=[{"field": "max_new_tokens", "message": f"at most {limit}"}],
            )
        if options.style not in allowed_styles(profile):
            raise UnknownStyle(options.style, profile)  # before the captioner runs
        mark = lap("model_ms", mark)

        # 3. Caption.
        caption_time = CallTiming()
        answer = await chain.captions.caption(
            photo_png, png_name(filename), "image/png", caption_time
        )
        caption = str(answer["captions"][0]["text"])
        timings["caption_ms"] = round(caption_time.ms, 2)
        mark = time.perf_counter()

        # 4. Prompt: framed here, fitted to the model by textgen-service.
        prompt = make_prompt(caption, profile, options.style, night=is_night(photo))
        mark = lap("seed_ms", mark)  # the timing's public name

        # 5. Generate.
        # 53 bits: a seed the web page (JavaScript numbers) can show and send back exactly.
        rng_seed = options.seed if options.seed is not None else secrets.randbits(53)
        request = GenerationRequest(
            prompt=prompt.text,
            model=profile.name,
            max_new_tokens=length,
            temperature=options.temperature,
            seed=rng_seed,
            style=prompt.genre,  # a styled model's genre token; None is left out
        )
        generate_time = CallTiming()
        generated = GenerationResponse.model_validate(
            await chain.textgen.generate(request.model_dump(exclude_none=True), generate_time)
        )
        timings["generate_ms"] = round(generate_time.ms, 2)
        mark = time.perf_counter()
        read = generated.normalisation.prompt  # what the model read: the story starts with it
        story, trimmed = trim_story(read, generated.text)

        # 6. Keep it for the card.
        story_id = chain.store.new_id()
        stored = StoredStory(
            id=story_id,
            photo_jpeg=await card_photo,
            caption=caption,
            prompt=read,
            story=story,
            model=profile.name,
            language=prompt.language,
            created=time.time(),
            alt_text=card.alt_text(caption, story),
        )
        await chain.store.put(stored)
        lap("store_ms", mark)
        total = (time.perf_counter() - started) * 1000
        timings["total_ms"] = round(total, 2)
        timings["gateway_ms"] = round(total - caption_time.ms - generate_time.ms, 2)
        # What the services themselves report: the rest of total_ms is the chain's own cost.
        timings["caption_service_ms"] = round(caption_time.server_ms, 2)
        timings["textgen_service_ms"] = round(generate_time.server_ms, 2)
        return StoryResponse(
            id=story_id,
            caption=caption,
            seed=rng_seed,
            prompt=PromptInfo(
                text=read,
                style=prompt.style,
                language=prompt.language,
                translated=prompt.translated,
            ),
            story=story,
            model=profile.name,
            timings=timings,
            card_url=card_url(chain.settings, story_id),
            alt_text=stored.alt_text,
            finish_reason="sentence" if trimmed else generated.finish_reason,
        )
    finally:
        card_photo.cancel()  # a failed chain leaves no task behind


async def card_png(chain: Chain, story_id: str) -> bytes | None:
    """The card of a stored story, None when there is no such story. Rendered from the
    stored photo by the first replica asked, then stored beside the story: every replica
    serves those same bytes after, without rendering again."""
    stored = await chain.store.get(story_id)
    if stored is None:
        return None
    if stored.card_png is None:
        png = await asyncio.to_thread(render, stored)
        await chain.store.put_card(story_id, png)
    return stored.card_png


def render(stored: StoredStory) -> bytes:
    """The card of a stored story (rendered once, then reused)."""
    if stored.card_png is None:
        import io

        with Image.open(io.BytesIO(stored.photo_jpeg)) as photo:
            png, _ = card.render_card(photo, stored.caption, stored.story, stored.model)
        stored.card_png = png
    return stored.card_png
