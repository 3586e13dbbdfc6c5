"""caption-service decodes a photo no larger than the captioner needs, within its byte limits."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from caption_service.main import create_app
from caption_service.settings import CaptionSettings
from talkative_common.images import DecodeBudget, read_image, to_png
from tests.support.captioner import photo
from tests.support.problems import assert_problem
from tests.support.servers import serve


@pytest.fixture(scope="module")
def app(caption_repository: Path) -> FastAPI:
    settings = CaptionSettings(
        model_repository=caption_repository, max_image_bytes=30_000_000, image_max_side=600
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[httpx.Client]:
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def captions(client: httpx.Client, data: bytes) -> list[dict[str, object]]:
    response = client.post("/v1/captions", files={"image": ("p", data, "image/png")})
    assert response.status_code == 200, response.text
    return list(response.json()["captions"])


def test_a_big_photo_is_captioned_as_its_reduced_copy(client: httpx.Client, app: FastAPI) -> None:
    cat = Image.open(io.BytesIO(photo("chelsea", "PNG")))
    big = encode(cat.resize((3000, 2000)), "PNG")  # 24 MB decoded: under the 30 MB limit
    reduced = to_png(read_image(big, max_side=600))
    assert Image.open(io.BytesIO(reduced)).size == (600, 400)
    assert captions(client, big) == captions(client, reduced)
    budget: DecodeBudget = app.state.decode_budget
    assert budget.peak == 3000 * 2000 * 4 and budget.in_flight == 0


def test_per_image_byte_limit(client: httpx.Client) -> None:
    # 4000 x 2000 colour is 32 MB decoded, over the 30 MB allowed ...
    colour = Image.new("RGB", (4000, 2000), (200, 30, 30))
    response = client.post("/v1/captions", files={"image": ("p", encode(colour, "PNG"))})
    assert_problem(response, 422, "4000 x 2000 pixels of RGB", "32,000,000 bytes", "30,000,000")
    # ... as a JPEG it is decoded at 1/4 scale (2 MB), and the same pixels in grey take 8 MB.
    assert captions(client, encode(colour, "JPEG"))
    assert captions(client, encode(colour.convert("L"), "PNG"))
