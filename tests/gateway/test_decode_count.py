"""One full decode of the photo per story request, counted across the whole stack.

The three services run in this process (talkative/stack.py, the builder every CLI
command uses), so Pillow can be watched everywhere at once: every file Pillow opens
records the size its header gives, and every decode of a file whose header gives the
upload's own size is counted. The gateway decodes the upload once, no larger than it
needs, and sends caption-service a reduced PNG; that one's decode is small, and anything
decoding the upload a second time (the gateway reading it again, caption-service getting
the original) is counted here.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from talkative.stack import Stack, call
from talkative_common.images import read_image
from tests.gateway.conftest import photo_bytes

UPLOAD = (2400, 1600)  # bigger than what the gateway (1080) and caption-service keep


@pytest.fixture()
def full_decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """The sizes decoded from files whose header says UPLOAD, as they happen."""
    seen: list[tuple[int, int]] = []
    init, load = ImageFile.ImageFile.__init__, ImageFile.ImageFile.load

    def recording_init(self: ImageFile.ImageFile, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.info["test_header_size"] = self.size  # before any draft() scales it down

    def counting_load(self: ImageFile.ImageFile) -> Any:
        if self.tile and self.info.get("test_header_size") == UPLOAD:  # tile: not yet decoded
            seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "__init__", recording_init)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    yield seen


def test_the_counter_sees_a_decode_of_the_upload(full_decodes: list[tuple[int, int]]) -> None:
    data = photo_bytes("PNG", UPLOAD)
    read_image(data, max_side=1080)
    Image.open(io.BytesIO(data)).load()
    assert len(full_decodes) == 2
    Image.open(io.BytesIO(photo_bytes("PNG", (1080, 720)))).load()  # not the upload's size
    assert len(full_decodes) == 2


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_a_story_decodes_the_photo_once(
    kind: str, gateway_repository: Path, full_decodes: list[tuple[int, int]]
) -> None:
    data = photo_bytes(kind, UPLOAD)
    stack = Stack(gateway_repository, text_models=["tiny_en"], default_text_model="tiny_en")

    async def story() -> dict[str, Any]:
        async with stack.gateway() as gateway:
            full_decodes.clear()  # the services' warm-ups are not part of the request
            body: dict[str, Any] = await call(
                gateway,
                "POST",
                "/v1/stories",
                files={"image": ("big." + kind.lower(), data, f"image/{kind.lower()}")},
                data={"max_new_tokens": "20", "seed": "1"},
            )
            return body

    body = asyncio.run(story())
    assert body["caption"] and body["story"]
    assert len(full_decodes) == 1, full_decodes
