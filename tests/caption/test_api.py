"""caption-service over HTTP: photos in every accepted format, and every bad upload a clear 4xx."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from caption_service.captioner import CaptionModel
from caption_service.main import create_app
from caption_service.settings import CaptionSettings
from talkative_common.model_client import ContractMismatch, ModelRepository, create_model_client
from tests.support.captioner import photo
from tests.support.problems import assert_problem
from tests.support.servers import serve


def upload(client: httpx.Client, data: bytes, name: str = "photo.jpg", field: str = "image"):
    return client.post("/v1/captions", files={field: (name, data, "application/octet-stream")})


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("chelsea", "JPEG", "a cat lying on a table."),
        ("coffee", "PNG", "a cup of coffee on a saucer."),
        ("rocket", "WEBP", "a rocket on the launch pad."),
        ("chelsea", "GIF", "a cat lying on a table."),
    ],
)
def test_ranked_captions(client: httpx.Client, name: str, fmt: str, expected: str) -> None:
    response = upload(client, photo(name, fmt), f"p.{fmt.lower()}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "captioner" and body["version"] == 1
    captions = body["captions"]
    assert len(captions) == 3
    assert captions[0]["text"] == expected
    log_probs = [c["log_prob"] for c in captions]
    assert log_probs == sorted(log_probs, reverse=True) and log_probs[0] <= 0


def test_exif_orientation_and_colour_modes_are_handled(client: httpx.Client) -> None:
    from skimage import data

    # The cat photo stored sideways with orientation 8 ("rotate 270 CW to view"), and in CMYK.
    upright = Image.fromarray(data.chelsea())
    sideways = upright.transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8
    out = io.BytesIO()
    sideways.save(out, format="JPEG", exif=exif.tobytes(), quality=95)
    assert upload(client, out.getvalue()).json()["captions"][0]["text"].startswith("a cat")
    cmyk = io.BytesIO()
    upright.convert("CMYK").save(cmyk, format="JPEG", quality=95)
    assert upload(client, cmyk.getvalue()).json()["captions"][0]["text"].startswith("a cat")


def test_bad_uploads(client: httpx.Client) -> None:
    jpeg = photo("chelsea", "JPEG")
    assert_problem(upload(client, b""), 422, "image", "empty")
    assert_problem(upload(client, b"Dear diary, today I took a photo.\n" * 20), 422, "not a JPEG")
    assert_problem(upload(client, jpeg[: len(jpeg) // 2]), 422, "damaged or cut short")
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    assert_problem(upload(client, bmp.getvalue(), "photo.jpg"), 422, "not a JPEG")
    # Pixels over the service's limit (4 MP), refused before decoding.
    big = io.BytesIO()
    Image.new("1", (3000, 3000)).save(big, format="PNG")
    assert_problem(upload(client, big.getvalue()), 422, "3000 x 3000", "4,000,000")
    # A decompression bomb: 400 MP of one bit in a few kB.
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG")
    assert_problem(upload(client, bomb.getvalue()), 422, "pixels")
    # Bytes over the upload limit (2 MB): 413 before the body is read.
    noise = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
    raw = io.BytesIO()
    Image.fromarray(noise).save(raw, format="PNG")
    assert len(raw.getvalue()) > 2_000_000
    assert_problem(upload(client, raw.getvalue()), 413)


def test_wrong_fields_and_bodies(client: httpx.Client) -> None:
    jpeg = photo("chelsea", "JPEG")
    assert_problem(upload(client, jpeg, field="photo"), 422, "image")
    assert_problem(client.post("/v1/captions"), 422, "image")
    assert_problem(client.post("/v1/captions", json={"image": "aGVsbG8="}), 422)
    assert_problem(client.post("/v1/captions", data={"image": "not a file"}), 422, "image")
    assert client.get("/v1/captions").status_code == 405


def test_health_readiness_metrics_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "captioner" in ready.text
    upload(client, photo("coffee", "JPEG"))
    metrics = client.get("/metrics").text
    assert 'service="caption"' in metrics
    assert "/v1/captions" in client.get("/openapi.json").text


def test_refuses_to_start_on_a_model_that_breaks_the_contract(tmp_path: Path) -> None:
    import tensorflow as tf

    class Wrong(tf.Module):  # takes decoded pixels, not image bytes
        @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {
                "captions": tf.strings.as_string(images[:, :3, 0, 0]),
                "log_probs": images[:, 0, :3, 0],
            }

    version = tmp_path / "captioner" / "1"
    module = Wrong()
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.serve})
    (version / "assets.extra").mkdir()
    (version / "assets.extra" / "model_card.json").write_text('{"kind": "captioner"}')
    settings = CaptionSettings(model_repository=tmp_path)
    # The check itself names what is wrong...
    model = CaptionModel("captioner", create_model_client(settings), ModelRepository(tmp_path))
    with pytest.raises(ContractMismatch, match="'image_bytes' is missing"):
        asyncio.run(model.verify())
    # ...and the service never starts serving on such a model.
    with pytest.raises(RuntimeError, match="failed to start"), serve(create_app(settings)):
        pass


@pytest.mark.parametrize("width", [1, 2, 5])
def test_beam_size_sets_how_many_captions_are_searched(client: httpx.Client, width: int) -> None:
    response = client.post(
        "/v1/captions",
        files={"image": ("p.jpg", photo("chelsea", "JPEG"), "image/jpeg")},
        data={"beam_size": str(width)},
    )
    assert response.status_code == 200, response.text
    captions = response.json()["captions"]
    assert len(captions) == width and captions[0]["text"] == "a cat lying on a table."


@pytest.mark.parametrize("width", ["0", "11", "three", "2.5"])
def test_beam_size_out_of_range_is_refused(client: httpx.Client, width: str) -> None:
    response = client.post(
        "/v1/captions",
        files={"image": ("p.jpg", photo("chelsea", "JPEG"), "image/jpeg")},
        data={"beam_size": width},
    )
    assert_problem(response, 422, "beam_size")
    assert response.json()["errors"][0]["field"] == "beam_size"


def test_beam_size_is_documented(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/captions"]["post"]["requestBody"]["content"]
    schema_ref = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    field = document["components"]["schemas"][schema_ref]["properties"]["beam_size"]
    bounded = next(s for s in field.get("anyOf", [field]) if s.get("type") == "integer")
    assert bounded["minimum"] == 1 and bounded["maximum"] == 10
    assert "beam" in field["description"]
