"""The captioner model as the service sees it: contract check, warm-up, one call per photo.

One instance is one version: its card comes from that version's directory and every
call names that version. `build_captioner` makes a verified, warmed-up instance for
the version the model server serves; main.py follows that version as it moves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from PIL import Image

from talkative_common.caption_schema import Caption
from talkative_common.errors import InvalidInput, Unavailable
from talkative_common.images import to_png
from talkative_common.model_client import (
    CAPTIONER,
    ModelClient,
    ModelNotFound,
    ModelRepository,
    ModelUnavailable,
)

log = logging.getLogger("caption.model")
# The exported signature taking the beam width per image (training/captioner/export.py).
BEAM_SIGNATURE = "caption_beam"


class CaptionModel:
    def __init__(
        self,
        name: str,
        client: ModelClient,
        repository: ModelRepository,
        *,
        version: int | None = None,
    ) -> None:
        """Read `version`'s card (a blocking file read).

        Without `version`, the newest on disk: what an in-process client with no pinned
        version serves (the `talkative caption` command). A service passes the version
        its model server serves.
        """
        self.name, self.client = name, client
        self.version = repository.resolve(name, version)
        self.card: dict[str, Any] = repository.card(name, self.version)
        self.beam_choosable = False  # whether the export has the `caption_beam` signature

    async def verify(self) -> None:
        """Refuse to serve a graph that does not meet the `captioner` contract."""
        CAPTIONER.check(
            self.name, await self.client.signature(self.name, CAPTIONER.name, self.version)
        )
        try:
            await self.client.signature(self.name, BEAM_SIGNATURE, self.version)
        except ModelNotFound:  # an export from before `caption_beam`: its width is fixed
            self.beam_choosable = False
        else:
            self.beam_choosable = True

    async def warmup(self) -> None:
        """One photo-sized request, so the first user does not pay for graph tracing."""
        gradient = np.linspace(0, 255, 320 * 240 * 3).reshape(240, 320, 3).astype(np.uint8)
        await self.caption(Image.fromarray(gradient))

    async def caption(self, image: Image.Image, beam_size: int | None = None) -> list[Caption]:
        """Ranked captions; `beam_size` picks the width (exports since `caption_beam` exist)."""
        inputs: dict[str, np.ndarray] = {"image_bytes": np.array([to_png(image)], dtype=object)}
        signature = CAPTIONER.name
        if beam_size is not None and beam_size != self.card.get("beam_size"):
            if not self.beam_choosable:
                raise InvalidInput(
                    f"this captioner ({self.name} v{self.version}) searches a fixed beam of "
                    f"{self.card.get('beam_size', 'its export')}; leave beam_size out",
                    field="beam_size",
                )
            inputs["beam_size"] = np.array([beam_size], dtype=np.int32)
            signature = BEAM_SIGNATURE
        try:
            out = await self.client.predict(
                self.name, inputs, signature=signature, version=self.version
            )
        except (ModelUnavailable, ModelNotFound) as exc:
            raise Unavailable(f"the captioner {self.name!r} is unavailable: {exc}") from exc
        texts, log_probs = out["captions"][0], out["log_probs"][0]
        return [
            Caption(text=t.decode("utf-8") if isinstance(t, bytes) else str(t), log_prob=float(lp))
            for t, lp in zip(texts, log_probs, strict=True)
            if t  # a search narrower than the export's width leaves empty slots
        ]


async def build_captioner(
    name: str, client: ModelClient, repository: ModelRepository, version: int
) -> CaptionModel:
    """A captioner for `version`, checked against the contract and warmed up."""
    # The card is a file read: off the event loop, since a switch happens under traffic.
    model = await asyncio.to_thread(CaptionModel, name, client, repository, version=version)
    await model.verify()
    await model.warmup()
    return model
