"""A small, honest stand-in for the gateway's public API (POST /v1/stories, GET card.png).

It follows the documented contract: multipart `image` + options in, {id, caption, seed,
story, model, timings, card_url} out, a real PNG card made with Pillow, problem+json errors,
503 + Retry-After while switched down. It counts calls. The caption describes what Pillow
sees (size, colour); the story is seeded word salad, labelled as such in `model`.
"""

from __future__ import annotations

import io
import random
import threading
import uuid
from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image, ImageDraw, ImageStat

PROBLEM = "application/problem+json"
TEXT = (
    "the king rode out at dawn and the river sang to the stones while the old woman "
    "counted her lanterns and a child laughed under the bridge of the silent town"
)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _colour(rgb: list[float]) -> str:
    r, g, b = rgb[:3]
    if max(r, g, b) - min(r, g, b) < 25:
        return "grey" if 60 < r < 200 else ("dark" if r <= 60 else "bright")
    return ("red", "green", "blue")[max(range(3), key=lambda i: rgb[i])]


class FakeGateway:
    def __init__(self) -> None:
        self.down = False
        self.story_calls = 0
        self.card_calls = 0
        self.next_stories: list[str] = []  # forced stories, for word-filter tests
        self.cards: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/readyz")
        async def readyz() -> Response:
            if self.down:
                return _problem(503, "captioner down", {"Retry-After": "1"})
            return JSONResponse({"status": "ready"})

        @app.post("/v1/stories")
        async def stories(
            image: Annotated[UploadFile, File()],
            seed: Annotated[int | None, Form()] = None,
            model: Annotated[str | None, Form()] = None,
            max_new_tokens: Annotated[int, Form(ge=1, le=2000)] = 200,
            temperature: Annotated[float, Form(gt=0, le=2)] = 0.7,
            style: Annotated[str | None, Form()] = None,
        ) -> Response:
            with self.lock:
                self.story_calls += 1
            if self.down:
                return _problem(503, "caption-service is down", {"Retry-After": "1"})
            data = await image.read()
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    rgb = img.convert("RGB")
            except Exception:
                return _problem(422, "image: the file is not a readable image")
            mean = ImageStat.Stat(rgb.resize((32, 32))).mean
            caption = f"a mostly {_colour(mean)} picture, {rgb.width} by {rgb.height} pixels"
            seed = seed if seed is not None else 0
            rng = random.Random(seed)
            if self.next_stories:
                story = self.next_stories.pop(0)
            else:
                n, words = max(1, max_new_tokens // 5), TEXT.split()
                story = " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."
            story_id = uuid.uuid4().hex
            self.cards[story_id] = self._card(caption, story)
            return JSONResponse(
                {
                    "id": story_id,
                    "caption": caption,
                    "seed": seed,
                    "story": story,
                    "model": model or "fake_word_salad",
                    "timings": {"caption_ms": 1.0, "generate_ms": 1.0},
                    "card_url": f"/v1/stories/{story_id}/card.png",
                }
            )

        @app.get("/v1/stories/{story_id}/card.png")
        async def card(story_id: str) -> Response:
            with self.lock:
                self.card_calls += 1
            if self.down:
                return _problem(503, "down", {"Retry-After": "1"})
            if story_id not in self.cards:
                return _problem(404, "no such story")
            return Response(self.cards[story_id], media_type="image/png")

        return app

    @staticmethod
    def _card(caption: str, story: str) -> bytes:
        img = Image.new("RGB", (480, 270), (250, 245, 230))
        draw = ImageDraw.Draw(img)
        draw.text((16, 16), caption, fill=(20, 20, 20))
        for i in range(0, min(len(story), 600), 70):
            draw.text((16, 48 + i // 70 * 16), story[i : i + 70], fill=(40, 40, 40))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()
