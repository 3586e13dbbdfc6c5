"""caption-service with an export whose card asks for detections: `caption_scene`.

The SavedModel here is tiny and real: its `caption_scene` signature captions a photo with
what it received (how many non-empty detection rows, how many of them faces, the beam
width), so a test reads from the caption that the service found the rows, sent them
whole and passed the width. Served in-process, and over gRPC and REST by
`talkative model-server` (TF Serving's protocols).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from caption_service.captioner import CaptionModel
from caption_service.main import create_app
from caption_service.settings import CaptionSettings
from talkative_common.detectors import FACE, KINDS, MAX_DETECTIONS
from talkative_common.model_client import ContractMismatch, ModelRepository, create_model_client
from tests.support.model_server import serve_repository
from tests.support.servers import serve

WIDTH = 3  # the export's `beam_size`, and how many captions each signature returns
DETECTIONS = {"signature": "caption_scene", "max": MAX_DETECTIONS, "kinds": list(KINDS)}


def export(version: Path, *, scene: bool = True, card: dict[str, Any] | None = None) -> Path:
    """A captioner that says what it was given; `scene=False` leaves `caption_scene` out."""
    import tensorflow as tf

    def ranked(first: tf.Tensor, beam: tf.Tensor) -> dict[str, tf.Tensor]:
        """[B] first captions -> captions [B, WIDTH] ("" beyond each image's beam width)."""
        slots = tf.range(WIDTH)[None, :]
        seconds = tf.strings.join(
            [tf.fill([tf.shape(first)[0], WIDTH], "also "), tf.strings.as_string(slots)]
        )
        texts = tf.where(slots == 0, first[:, None], seconds)
        texts = tf.where(slots < beam[:, None], texts, "")
        log_probs = -0.1 * tf.cast(tf.tile(slots + 1, [tf.shape(first)[0], 1]), tf.float32)
        return {"captions": texts, "log_probs": log_probs}

    class Echo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def plain(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            batch = tf.shape(image_bytes)[0]
            return ranked(tf.fill([batch], "plain"), tf.fill([batch], WIDTH))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="image_bytes"),
                tf.TensorSpec([None], tf.int32, name="beam_size"),
            ]
        )
        def beam(self, image_bytes: tf.Tensor, beam_size: tf.Tensor) -> dict[str, tf.Tensor]:
            first = tf.strings.join(["beam ", tf.strings.as_string(beam_size)])
            return ranked(first, beam_size)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="image_bytes"),
                tf.TensorSpec([None, MAX_DETECTIONS, 6], tf.float32, name="detections"),
                tf.TensorSpec([None], tf.int32, name="beam_size"),
            ]
        )
        def scene(
            self, image_bytes: tf.Tensor, detections: tf.Tensor, beam_size: tf.Tensor
        ) -> dict[str, tf.Tensor]:
            kinds = detections[:, :, 0]
            rows = tf.reduce_sum(tf.cast(kinds != 0, tf.int32), axis=1)
            faces = tf.reduce_sum(tf.cast(kinds == FACE, tf.int32), axis=1)
            # The photo arrived too: its byte count is never 0.
            sizes = tf.strings.length(image_bytes)
            first = tf.strings.join(
                [
                    tf.strings.as_string(rows),
                    " rows, ",
                    tf.strings.as_string(faces),
                    " faces, beam ",
                    tf.strings.as_string(beam_size),
                    tf.where(sizes > 0, "", ", no photo"),
                ]
            )
            return ranked(first, beam_size)

    module = Echo()
    signatures = {"serving_default": module.plain, "caption_beam": module.beam}
    if scene:
        signatures["caption_scene"] = module.scene
    tf.saved_model.save(module, str(version), signatures=signatures)
    (version / "assets.extra").mkdir()
    card = card if card is not None else {"beam_size": WIDTH, "detections": DETECTIONS}
    (version / "assets.extra" / "model_card.json").write_text(
        json.dumps({"name": "captioner", "kind": "captioner", **card})
    )
    return version


@pytest.fixture(scope="module")
def scene_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene_models")
    export(root / "captioner" / "1")
    return root


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def face_photo() -> bytes:
    """A face of scikit-image's Labeled Faces in the Wild subset on a grey 640 x 480."""
    from skimage import data

    pixels = (data.lfw_subset()[0] * 255).round().astype(np.uint8)
    face = Image.fromarray(pixels).resize((160, 160), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (640, 480), 128)
    canvas.paste(face, (240, 120))
    return png(canvas.convert("RGB"))


BLANK = png(Image.new("RGB", (320, 240), (200, 200, 200)))


def captions(client: httpx.Client, photo: bytes, beam_size: int | None = None) -> list[str]:
    response = client.post(
        "/v1/captions",
        files={"image": ("p.png", photo, "image/png")},
        data={} if beam_size is None else {"beam_size": str(beam_size)},
    )
    assert response.status_code == 200, response.text
    return [c["text"] for c in response.json()["captions"]]


def check_scene_service(client: httpx.Client) -> None:
    # A blank photo: no row; the card's width when the request names none.
    assert captions(client, BLANK) == ["0 rows, 0 faces, beam 3", "also 1", "also 2"]
    # The width asked for reaches the graph.
    assert captions(client, BLANK, beam_size=2) == ["0 rows, 0 faces, beam 2", "also 1"]
    assert captions(client, BLANK, beam_size=1) == ["0 rows, 0 faces, beam 1"]
    # A face: the detector's row reaches the graph.
    first = captions(client, face_photo())[0]
    assert first.endswith("beam 3") and " 1 faces" in first, first


@pytest.fixture(scope="module")
def inprocess_client(scene_repository: Path) -> Iterator[httpx.Client]:
    app = create_app(CaptionSettings(model_repository=scene_repository))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_detections_and_width_reach_caption_scene_in_process(
    inprocess_client: httpx.Client,
) -> None:
    check_scene_service(inprocess_client)


def detections_counted(client: httpx.Client) -> float:
    """caption_detection_seconds_count: how many photos the detector has looked at."""
    prefix = 'caption_detection_seconds_count{service="caption"}'
    lines = [x for x in client.get("/metrics").text.splitlines() if x.startswith(prefix)]
    assert len(lines) == 1
    return float(lines[0].split()[-1])


def test_detection_time_is_in_the_metrics(inprocess_client: httpx.Client) -> None:
    before = detections_counted(inprocess_client)
    captions(inprocess_client, BLANK)
    assert detections_counted(inprocess_client) == before + 1


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_detections_and_width_reach_caption_scene_over_the_model_server(
    scene_repository: Path, tmp_path: Path, backend: str
) -> None:
    with serve_repository(scene_repository, tmp_path) as server:
        settings = CaptionSettings(
            model_repository=scene_repository,
            model_backend=backend,
            model_server_host="127.0.0.1",
            model_server_grpc_port=server.grpc_port,
            model_server_rest_port=server.rest_port,
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
            check_scene_service(client)


def test_an_export_without_detections_is_called_as_before(tmp_path: Path) -> None:
    export(tmp_path / "captioner" / "1", card={"beam_size": WIDTH})
    app = create_app(CaptionSettings(model_repository=tmp_path))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert captions(client, face_photo()) == ["plain", "also 1", "also 2"]
        assert captions(client, BLANK, beam_size=2) == ["beam 2", "also 1"]
        assert detections_counted(client) == 0  # no detector ran


def refused(root: Path) -> ContractMismatch:
    """The check's error for the repository's captioner; the service refuses to start too."""
    settings = CaptionSettings(model_repository=root)
    model = CaptionModel("captioner", create_model_client(settings), ModelRepository(root))
    with pytest.raises(ContractMismatch) as caught:
        asyncio.run(model.verify())
    with pytest.raises(RuntimeError, match="failed to start"), serve(create_app(settings)):
        pass
    return caught.value


def test_a_card_asking_for_detections_without_caption_scene_is_refused(tmp_path: Path) -> None:
    export(tmp_path / "captioner" / "1", scene=False)
    error = str(refused(tmp_path))
    assert "asks for detections" in error and "no 'caption_scene' signature" in error


@pytest.mark.parametrize(
    "detections",
    [
        {**DETECTIONS, "max": 8},
        {**DETECTIONS, "kinds": ["face", "cat_face"]},
        {**DETECTIONS, "signature": "caption_beam"},
        "yes",
    ],
    ids=["max", "kinds", "signature", "not-an-object"],
)
def test_a_card_asking_for_other_detections_is_refused(
    scene_repository: Path, tmp_path: Path, detections: Any
) -> None:
    version = tmp_path / "captioner" / "1"
    shutil.copytree(scene_repository / "captioner" / "1", version)
    card = version / "assets.extra" / "model_card.json"
    card.write_text(json.dumps({"beam_size": WIDTH, "detections": detections}))
    assert "model card's `detections`" in str(refused(tmp_path))
