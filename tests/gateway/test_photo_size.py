"""What size of photo travels: the gateway decodes an upload once, small, and sends that.

caption-service gets a PNG no larger than max(image_max_side, card_photo_max_side) on its
longer side, never the upload; the card's copy comes from the same decode; a photo over
the per-image byte limit is a 422 at the edge.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from functools import cache

import httpx
import pytest
from PIL import Image

from gateway_service import stories
from gateway_service.main import build_chain, create_app
from gateway_service.schemas import StoryOptions, StoryResponse
from tests.gateway.conftest import gateway_settings, photo_bytes
from tests.support.problems import assert_problem
from tests.support.servers import serve


@cache
def big_jpeg(size: tuple[int, int] = (6000, 4000)) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes("PNG"))).resize(size).save(out, "JPEG", quality=90)
    return out.getvalue()


def uploaded_file(request: httpx.Request) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the one file in a multipart request."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    for part in request.content.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b"filename=" in head:
            lines = head.decode().strip().splitlines()
            name = lines[0].split('filename="')[1].rstrip('"')
            kind = next(h.split(": ")[1] for h in lines if h.lower().startswith("content-type"))
            return name, kind, body.removesuffix(b"\r\n")
    raise AssertionError("no file in the request")


@pytest.fixture()
def seen() -> list[tuple[str, str, bytes]]:
    return []


@pytest.fixture()
def recording_caption_service(seen: list[tuple[str, str, bytes]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(uploaded_file(request))
        body = {"captions": [{"text": "a cat.", "log_prob": -0.1}], "model": "c", "version": 1}
        return httpx.Response(200, content=json.dumps(body).encode())

    return httpx.MockTransport(answer)


def test_caption_service_gets_a_bounded_png_not_the_upload(
    recording_caption_service: httpx.MockTransport,
    seen: list[tuple[str, str, bytes]],
    textgen_url: str,
) -> None:
    settings = gateway_settings("http://caption", textgen_url)
    chain = build_chain(settings, caption_transport=recording_caption_service)
    upload = big_jpeg()
    options = StoryOptions(model="tiny_en", max_new_tokens=20, seed=1)

    async def tell() -> StoryResponse:
        try:
            return await stories.tell(chain, upload, "holiday.jpg", "image/jpeg", options)
        finally:
            await chain.close()

    story = asyncio.run(tell())
    assert story.caption == "a cat."
    [(name, kind, sent)] = seen
    assert (name, kind) == ("holiday.png", "image/png")
    assert sent != upload
    with Image.open(io.BytesIO(sent)) as photo:
        assert photo.format == "PNG" and photo.mode == "RGB"
        # max(image_max_side 1024, card_photo_max_side 1080) on the longer side.
        assert photo.size == (1080, 720)
    stored = asyncio.run(chain.store.get(story.id))
    assert stored is not None
    with Image.open(io.BytesIO(stored.photo_jpeg)) as card_photo:
        assert card_photo.size == (1080, 720)
    assert chain.budget.in_flight == 0
    # libjpeg decoded the 6000 x 4000 upload at 1/4: 1500 x 1000, never 24 M pixels.
    assert chain.budget.peak == 1500 * 1000 * 4


@pytest.mark.parametrize(
    ("image_side", "card_side", "sent"), [(1600, 800, (1600, 1067)), (300, 500, (500, 333))]
)
def test_the_larger_of_the_two_sides_is_kept(
    image_side: int, card_side: int, sent: tuple[int, int]
) -> None:
    settings = gateway_settings(
        "http://caption", "http://textgen", image_max_side=image_side, card_photo_max_side=card_side
    )
    photo, png = stories.read_photo(settings, big_jpeg())
    with Image.open(io.BytesIO(png)) as decoded:
        assert decoded.size == photo.size == sent


def test_small_photos_reach_the_captioner_unchanged(jpeg: bytes) -> None:
    settings = gateway_settings("http://caption", "http://textgen")
    photo, png = stories.read_photo(settings, jpeg)
    with Image.open(io.BytesIO(png)) as sent, Image.open(io.BytesIO(jpeg)) as original:
        assert sent.size == original.size == photo.size
        assert sent.tobytes() == original.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def tight(down_url: str, textgen_url: str) -> Iterator[httpx.Client]:
    """A gateway taking at most 2 MB of decoded pixels a photo (caption-service down)."""
    settings = gateway_settings(down_url, textgen_url, max_image_bytes=2_000_000)
    with (
        serve(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


@pytest.mark.parametrize("route", ["/v1/stories", "/v1/captions"])
def test_per_image_byte_limit_is_a_422_at_the_edge(tight: httpx.Client, route: str) -> None:
    # 1000 x 600 RGBA: 600,000 pixels, 2,400,000 bytes decoded.
    rgba = io.BytesIO()
    Image.new("RGBA", (1000, 600), (1, 2, 3, 4)).save(rgba, "PNG")
    response = tight.post(route, files={"image": ("p.png", rgba.getvalue(), "image/png")})
    body = assert_problem(
        response, 422, "1000 x 600 pixels of RGBA", "2,400,000 bytes", "2,000,000 allowed"
    )
    assert body["errors"][0]["field"] == "image"
    # The same pixels in grey (one byte each) pass the edge: only the dead caption-service
    # answers (503), which shows the photo was accepted.
    grey = io.BytesIO()
    Image.new("L", (1000, 600), 9).save(grey, "PNG")
    accepted = tight.post(route, files={"image": ("p.png", grey.getvalue(), "image/png")})
    assert_problem(accepted, 503, "caption-service")


def test_a_big_photo_is_captioned_as_its_reduced_copy(
    client: httpx.Client, caption_url: str
) -> None:
    """Through the gateway, a 24-megapixel JPEG gets the caption of the copy it sends."""
    upload = big_jpeg()
    through = client.post("/v1/captions", files={"image": ("big.jpg", upload, "image/jpeg")})
    assert through.status_code == 200, through.text
    _, png = stories.read_photo(gateway_settings("http://caption", "http://textgen"), upload)
    direct = httpx.post(
        caption_url + "/v1/captions", files={"image": ("p.png", png, "image/png")}, timeout=60
    )
    assert direct.status_code == 200, direct.text
    assert through.json()["captions"] == direct.json()["captions"]
