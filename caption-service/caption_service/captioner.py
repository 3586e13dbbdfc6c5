"""The captioner model as the service sees it: contract check, warm-up, one call per photo.

One instance is one version: its card comes from that version's directory and every
call names that version. `build_captioner` makes a verified, warmed-up instance for
the version the model server serves; main.py follows that version as it moves.

An export whose card has `detections` is called through `caption_scene` with the people
and cat faces OpenCV's cascades find in the photo (talkative_common/detectors.py), found
here since a cascade is no TensorFlow op; any other export exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np
from PIL import Image
from prometheus_client import CollectorRegistry, Histogram

from talkative_common.caption_schema import Caption
from talkative_common.detectors import KINDS, MAX_DETECTIONS, ROW_SIZE, Detector
from talkative_common.errors import InvalidInput, Unavailable
from talkative_common.images import to_png
from talkative_common.model_client import (
    CAPTION_SCENE,
    CAPTIONER,
    ContractMismatch,
    ModelClient,
    ModelNotFound,
    ModelRepository,
    ModelUnavailable,
)

log = logging.getLogger("caption.model")
# The exported signature taking the beam width per image (training/captioner/export.py).
BEAM_SIGNATURE = "caption_beam"
# The one taking the photo's detections too; named by the card's `detections.signature`.
SCENE_SIGNATURE = CAPTION_SCENE.name


class SceneDetection:
    """The process's detector of people and cat faces, and the time it takes.

    One per app (so one per caption-service process), shared by every captioner version the
    service follows. The cascades are loaded when a captioner whose card asks for detections
    is first verified, not at start-up: an export without `detections` never loads OpenCV.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._detector: Detector | None = None
        self._lock = threading.Lock()
        self.seconds = (
            Histogram(
                "caption_detection_seconds",
                "time to find people and cat faces in a photo (OpenCV cascades)",
                ["service"],
                registry=registry,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ).labels("caption")
            if registry is not None
            else None
        )

    def detector(self) -> Detector:
        """The detector, its cascades loaded on first use (blocking: call it in a thread)."""
        with self._lock:
            if self._detector is None:
                self._detector = Detector()
            return self._detector

    async def detect(self, image: Image.Image) -> np.ndarray:
        """float32[16, 6] detection rows of the photo, found off the event loop."""

        def run() -> tuple[np.ndarray, float]:
            started = time.perf_counter()
            rows = self.detector().detect(image)
            return rows, time.perf_counter() - started

        rows, seconds = await asyncio.to_thread(run)
        if self.seconds is not None:
            self.seconds.observe(seconds)
        log.debug(
            "detections",
            extra={"detections": int((rows[:, 0] != 0).sum()), "detect_ms": seconds * 1000},
        )
        return rows


class CaptionModel:
    def __init__(
        self,
        name: str,
        client: ModelClient,
        repository: ModelRepository,
        *,
        version: int | None = None,
        detection: SceneDetection | None = None,
    ) -> None:
        """Read `version`'s card (a blocking file read).

        Without `version`, the newest on disk: what an in-process client with no pinned
        version serves (the `talkative caption` command). A service passes the version
        its model server serves, and its `detection` (one per process); without one, a
        captioner whose card asks for detections makes its own.
        """
        self.name, self.client = name, client
        self.version = repository.resolve(name, version)
        self.card: dict[str, Any] = repository.card(name, self.version)
        self.beam_choosable = False  # whether the export has the `caption_beam` signature
        # Whether it is called through `caption_scene` with the photo's detections: its
        # card has `detections` (checked by verify).
        self.scene = "detections" in self.card
        self.detection = detection or SceneDetection()

    async def verify(self) -> None:
        """Refuse to serve a graph that does not meet the `captioner` contract (and, when its
        card asks for detections, the `caption_scene` one)."""
        CAPTIONER.check(
            self.name, await self.client.signature(self.name, CAPTIONER.name, self.version)
        )
        if self.scene:
            await self._verify_scene()
            # The cascades load now (off the event loop), before the service says it is ready.
            await asyncio.to_thread(self.detection.detector)
            return
        try:
            await self.client.signature(self.name, BEAM_SIGNATURE, self.version)
        except ModelNotFound:  # an export from before `caption_beam`: its width is fixed
            self.beam_choosable = False
        else:
            self.beam_choosable = True

    async def _verify_scene(self) -> None:
        where = f"captioner {self.name!r} v{self.version}"
        spec = self.card["detections"]
        wanted = {"signature": SCENE_SIGNATURE, "max": MAX_DETECTIONS, "kinds": list(KINDS)}
        if not isinstance(spec, dict) or any(spec.get(k) != v for k, v in wanted.items()):
            raise ContractMismatch(
                f"{where}: its model card's `detections` is {spec!r}; caption-service "
                f"provides {wanted!r}"
            )
        if not isinstance(self.card.get("beam_size"), int):
            raise ContractMismatch(
                f"{where}: its model card asks for detections but gives no `beam_size`, the "
                f"width `{SCENE_SIGNATURE}` searches when a request names none"
            )
        try:
            info = await self.client.signature(self.name, SCENE_SIGNATURE, self.version)
        except ModelNotFound:
            raise ContractMismatch(
                f"{where}: its model card asks for detections (signature {SCENE_SIGNATURE!r}) "
                f"but the export has no {SCENE_SIGNATURE!r} signature"
            ) from None
        CAPTION_SCENE.check(self.name, info)
        shape = info.inputs["detections"].shape
        if shape is not None and tuple(shape[1:]) not in (
            (MAX_DETECTIONS, ROW_SIZE),
            (None, ROW_SIZE),
            (None, None),
        ):
            raise ContractMismatch(
                f"{where}: input 'detections' of {SCENE_SIGNATURE!r} has shape {list(shape)}, "
                f"expected [batch, {MAX_DETECTIONS}, {ROW_SIZE}]"
            )
        self.beam_choosable = True  # `caption_scene` takes a width per image

    async def warmup(self) -> None:
        """One photo-sized request, so the first user does not pay for graph tracing."""
        gradient = np.linspace(0, 255, 320 * 240 * 3).reshape(240, 320, 3).astype(np.uint8)
        await self.caption(Image.fromarray(gradient))

    async def caption(self, image: Image.Image, beam_size: int | None = None) -> list[Caption]:
        """Ranked captions; `beam_size` picks the width (exports since `caption_beam` exist)."""
        if self.scene:
            return await self._predict(await self._scene_inputs(image, beam_size), SCENE_SIGNATURE)
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
        return await self._predict(inputs, signature)

    async def _scene_inputs(
        self, image: Image.Image, beam_size: int | None
    ) -> dict[str, np.ndarray]:
        """`caption_scene`'s inputs: the photo, its detections, the width (or the card's)."""
        detections = await self.detection.detect(image)
        width = self.card["beam_size"] if beam_size is None else beam_size
        return {
            "image_bytes": np.array([to_png(image)], dtype=object),
            "detections": detections[None],
            "beam_size": np.array([width], dtype=np.int32),
        }

    async def _predict(self, inputs: dict[str, np.ndarray], signature: str) -> list[Caption]:
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
    name: str,
    client: ModelClient,
    repository: ModelRepository,
    version: int,
    *,
    detection: SceneDetection | None = None,
) -> CaptionModel:
    """A captioner for `version`, checked against the contract and warmed up."""
    # The card is a file read: off the event loop, since a switch happens under traffic.
    model = await asyncio.to_thread(
        CaptionModel, name, client, repository, version=version, detection=detection
    )
    await model.verify()
    await model.warmup()
    return model
