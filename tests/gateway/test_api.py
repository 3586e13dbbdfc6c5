"""The gateway over real HTTP: the story chain against the real services, and every bad input.

Bad uploads and knobs go to a gateway whose caption-service is down: each one still gets
its own 4xx (never the 503 a call downstream would give), which shows that bad input is
refused at the edge and never reaches a model.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from gateway_service.main import create_app
from tests.gateway.conftest import gateway_settings
from tests.support.problems import assert_problem
from tests.support.servers import serve


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG header claiming 10 gigapixels over a few hundred bytes: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.fixture(scope="module")
def edge(down_url: str, textgen_url: str) -> Iterator[httpx.Client]:
    """A gateway whose caption-service is down: only the edge's own checks can answer 4xx."""
    with (
        serve(create_app(gateway_settings(down_url, textgen_url))) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c


def model_entry(name: str, language: str, styles: list[str]) -> dict[str, Any]:
    """A /v1/models entry of textgen-service's, for a model that never runs."""
    return {
        "name": name, "version": 1, "kind": "gpt2", "language": language,
        "description": f"test model {name}", "parameters": 1, "held_out_loss": {},
        "max_new_tokens": 200, "tokenizer": "byte_level_bpe", "alphabet": None,
        "card": {}, "styles": styles,
    }  # fmt: skip


# Models trained with style tokens (one per language, as issue 19's) and one without.
STYLED_MODELS = [
    model_entry("gpt2_en", "en", ["bible", "novel", "play"]),
    model_entry("gpt2_fr", "fr", ["bible"]),
    model_entry("gpt2_es", "es", ["bible"]),
    model_entry("old_en", "en", []),
]


def styled_textgen(seen: list[dict[str, Any]]) -> FastAPI:
    """A stand-in textgen-service listing STYLED_MODELS: it keeps each generation request
    and answers with the prompt as read plus a few words."""
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"models": STYLED_MODELS, "default": "gpt2_en"}

    @app.post("/v1/generations")
    def generate(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(body)
        return {
            "text": " and it was good.", "model": body["model"], "version": 1, "tokens": 5,
            "finish_reason": "length", "seed": body.get("seed", 0),
            "normalisation": {"changed": False, "prompt": body["prompt"], "replaced": {}},
        }  # fmt: skip

    @app.get("/healthz")
    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def story(
    client: httpx.Client, image: bytes | None, name: str = "photo.jpg", **form: Any
) -> httpx.Response:
    files = {"image": (name, image, "image/jpeg")} if image is not None else None
    data = {k: str(v) for k, v in form.items()}
    return client.post("/v1/stories", files=files, data=data or None)


# --- bad input, refused at the edge -------------------------------------------------------------


def test_no_file(edge: httpx.Client) -> None:
    body = assert_problem(story(edge, None, model="tiny_en"), 422, "image", "required")
    assert body["errors"][0]["field"] == "image"


def test_empty_file(edge: httpx.Client) -> None:
    assert_problem(story(edge, b""), 422, "image", "empty")


def test_text_file_named_jpg(edge: httpx.Client) -> None:
    assert_problem(story(edge, b"Dear diary, today I took a photo.\n" * 20), 422, "image")


def test_truncated_jpeg(edge: httpx.Client, jpeg: bytes) -> None:
    assert_problem(story(edge, jpeg[: len(jpeg) // 2]), 422, "image")


def test_huge_pixel_dimensions(edge: httpx.Client) -> None:
    bomb = huge_png()
    assert len(bomb) < 100_000
    assert_problem(story(edge, bomb, "bomb.png"), 422, "image")


def test_oversized_body(edge: httpx.Client) -> None:
    assert_problem(story(edge, b"\xff\xd8" + b"\0" * 10_100_000), 413)


def test_unknown_model(edge: httpx.Client, png: bytes) -> None:
    body = assert_problem(story(edge, png, model="gpt9_xx"), 404, "gpt9_xx", "tiny_en")
    assert body["errors"][0]["field"] == "model"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("temperature", "5", ("temperature",)),
        ("temperature", "-0.1", ("temperature",)),
        ("temperature", "hot", ("temperature",)),
        ("temperature", "nan", ("temperature", "finite number")),
        ("temperature", "inf", ("temperature", "finite number")),
        ("max_new_tokens", "0", ("max_new_tokens",)),
        ("max_new_tokens", "100000", ("max_new_tokens", "at most 500")),
        ("max_new_tokens", "1.5", ("max_new_tokens",)),
        ("seed", "-1", ("seed",)),
        ("seed", str(2**64), ("seed",)),
        ("style", "haiku", ("style",)),
        ("model", "../../etc/passwd", ("model",)),
    ],
)
def test_out_of_range_knobs(
    edge: httpx.Client, png: bytes, field: str, value: str, words: tuple[str, ...]
) -> None:
    assert_problem(story(edge, png, "photo.png", **{field: value}), 422, *words)


def test_json_bodies_have_their_own_small_limit(edge: httpx.Client) -> None:
    """A 2,000-character prompt never needs megabytes: JSON stops at max_json_bytes, while
    a photo upload may still use the whole max_request_bytes."""
    big = {"prompt": "a" * 100_000, "model": "tiny_en"}
    assert_problem(edge.post("/v1/generations", json=big), 413, "JSON")
    # The endpoint's limit, not the sender's: declared as text or as multipart, a body for
    # a JSON endpoint is refused at the same size, unread.
    for media in ("text/plain", "multipart/form-data; boundary=x"):
        sent = edge.post("/v1/generations", content=b"a" * 100_000, headers={"content-type": media})
        assert_problem(sent, 413, "JSON")
    # ... while a photo endpoint still takes a body past the JSON limit: past the size
    # check, it reaches the captioner (down for this gateway: 503, not 413).
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    photo = Image.fromarray(noise)  # noise: a PNG that does not compress below the limit
    data = io.BytesIO()
    photo.save(data, "PNG")
    assert len(data.getvalue()) > 64_000
    answer = edge.post("/v1/captions", files={"image": ("big.png", data.getvalue(), "image/png")})
    assert answer.status_code == 503 and "caption-service" in answer.text, answer.text


def test_unknown_form_fields_are_named(edge: httpx.Client, png: bytes) -> None:
    """A misspelt option (`max_token`) must not silently get the default length."""
    body = assert_problem(story(edge, png, "photo.png", max_token="5"), 422, "max_token")
    assert body["errors"] == [
        {
            "field": "max_token",
            "message": "unknown field; check the spelling against the API documentation",
        }
    ]
    extra = edge.post(
        "/v1/captions", files={"image": ("p.png", png, "image/png")}, data={"beam": "9"}
    )
    assert_problem(extra, 422, "beam")


def test_generation_passthrough_validates(edge: httpx.Client) -> None:
    ok = {"prompt": "And the king", "model": "tiny_en", "max_new_tokens": 5, "seed": 1}
    body = edge.post("/v1/generations", json=ok).json()
    assert body["model"] == "tiny_en" and len(body["text"]) == 5
    assert_problem(edge.post("/v1/generations", json=ok | {"prompt": ""}), 422, "prompt")
    assert_problem(edge.post("/v1/generations", json=ok | {"top_p": 0}), 422, "top_p")
    assert_problem(edge.post("/v1/generations", json=ok | {"temprature": 1}), 422, "unknown field")
    assert_problem(edge.post("/v1/generations", json=ok | {"model": "nope"}), 404, "nope")
    assert_problem(edge.post("/v1/generations", json=ok | {"max_new_tokens": 501}), 422, "500")
    broken = edge.post(
        "/v1/generations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(broken, 422, "json")
    # A prompt the model cannot read at all: textgen-service's own 422 comes through as is.
    assert_problem(edge.post("/v1/generations", json=ok | {"prompt": "中文"}), 422, "tiny_en")


def test_models_passthrough(edge: httpx.Client) -> None:
    body = edge.get("/v1/models").json()
    assert {m["name"] for m in body["models"]} == {"tiny_en", "tiny_fr"}
    assert body["default"] == "tiny_en"


def test_models_are_a_public_summary_of_the_cards(edge: httpx.Client) -> None:
    """No training paths, hashes or run settings leave the gateway; the page's fields stay."""
    entry = edge.get("/v1/models").json()["models"][0]
    assert set(entry) == {
        "name", "version", "kind", "language", "description", "parameters", "held_out_loss",
        "max_new_tokens", "styles", "training_corpus", "licence",
    }  # fmt: skip
    assert set(entry["training_corpus"]) == {"name", "source", "licence"}
    text = json.dumps(entry)
    assert "sha256" not in text and "run_dir" not in text and "/tmp" not in text


def test_unknown_story_card(edge: httpx.Client) -> None:
    assert_problem(edge.get("/v1/stories/AAAAAAAAAAAAAAAA/card.png"), 404, "expired")
    assert_problem(edge.get("/v1/stories/..%2F..%2Fetc/card.png"), 404)


def test_web_page_is_self_contained(edge: httpx.Client) -> None:
    page = edge.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css", "/static/fonts/DejaVuSerif.ttf"):
        assert edge.get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/v1/models", "/nowhere", "/healthz"])
def test_security_headers_on_every_answer(edge: httpx.Client, path: str) -> None:
    response = edge.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


# --- the chain, against the real caption-service and textgen-service -----------------------------


def test_story(client: httpx.Client, jpeg: bytes) -> None:
    response = story(client, jpeg, model="tiny_en", max_new_tokens=120, seed=5, style="verse")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["caption"] and body["model"] == "tiny_en" and body["seed"] == 5
    assert body["prompt"]["style"] == "verse" and body["prompt"]["text"].startswith("And it came")
    assert body["story"].startswith(body["prompt"]["text"])
    assert len(body["story"]) > len(body["prompt"]["text"])
    assert body["caption"] in body["alt_text"] and len(body["alt_text"]) <= 1000
    assert body["card_url"] == f"/v1/stories/{body['id']}/card.png"
    for step in ("validate_ms", "caption_ms", "generate_ms", "total_ms", "gateway_ms"):
        assert body["timings"][step] >= 0
    timings = body["timings"]
    assert timings["total_ms"] >= timings["caption_ms"]
    # What the services say they worked fits inside the time the gateway waited on them.
    assert 0 < timings["caption_service_ms"] <= timings["caption_ms"]
    assert 0 < timings["textgen_service_ms"] <= timings["generate_ms"]

    card = client.get(body["card_url"])
    assert card.status_code == 200 and card.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(card.content)) as img:
        assert img.format == "PNG" and img.size == (1080, 1350)

    again = story(client, jpeg, model="tiny_en", max_new_tokens=120, seed=5, style="verse").json()
    assert again["story"] == body["story"] and again["id"] != body["id"]


def test_story_in_french_with_defaults(client: httpx.Client, png: bytes) -> None:
    body = story(client, png, "photo.png", model="tiny_fr").json()
    assert body["model"] == "tiny_fr" and body["prompt"]["language"] == "fr"
    assert 0 <= body["seed"] < 2**53  # a random seed JavaScript can hold exactly


def test_caption_passthrough(client: httpx.Client, jpeg: bytes) -> None:
    body = client.post("/v1/captions", files={"image": ("p.jpg", jpeg, "image/jpeg")}).json()
    assert body["captions"][0]["text"] and "log_prob" in body["captions"][0]
    bad = client.post("/v1/captions", files={"image": ("p.jpg", b"not a photo", "image/jpeg")})
    assert_problem(bad, 422, "image")
    # beam_size goes through to caption-service, which owns its bounds.
    files = {"image": ("p.jpg", jpeg, "image/jpeg")}
    greedy = client.post("/v1/captions", files=files, data={"beam_size": "1"})
    assert greedy.status_code == 200 and len(greedy.json()["captions"]) == 1
    assert_problem(client.post("/v1/captions", files=files, data={"beam_size": "11"}), 422, "beam")
    assert_problem(client.post("/v1/captions", files=files, data={"beam_size": "0"}), 422, "beam")


def test_ready_when_both_services_are(client: httpx.Client) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"] == {
        "caption-service": "ready",
        "textgen-service": "ready",
        "story-store": "ready (memory)",
    }


def test_public_url_empty_means_relative_card_urls() -> None:
    """Compose passes `${GATEWAY_PUBLIC_URL:-}`: unset there must mean relative card URLs,
    not a localhost address that is wrong for every user of a real host."""
    from gateway_service.settings import GatewaySettings
    from gateway_service.stories import card_url

    assert GatewaySettings(public_url="").public_url is None
    assert card_url(GatewaySettings(public_url=""), "abc") == "/v1/stories/abc/card.png"
    public = GatewaySettings(public_url="https://stories.example.org/")
    assert card_url(public, "abc") == "https://stories.example.org/v1/stories/abc/card.png"


# --- models trained with style tokens, behind a stand-in textgen-service ------------------------


@pytest.fixture(scope="module")
def styled(caption_url: str) -> Iterator[tuple[httpx.Client, list[dict[str, Any]]]]:
    """A gateway over the real caption-service and a textgen listing styled models."""
    seen: list[dict[str, Any]] = []
    with (
        serve(styled_textgen(seen)) as textgen,
        serve(create_app(gateway_settings(caption_url, textgen))) as url,
        httpx.Client(base_url=url, timeout=120) as c,
    ):
        yield c, seen


def test_models_list_their_styles(styled: tuple[httpx.Client, list[dict[str, Any]]]) -> None:
    client, _ = styled
    listed = {m["name"]: m["styles"] for m in client.get("/v1/models").json()["models"]}
    assert listed == {m["name"]: m["styles"] for m in STYLED_MODELS}


@pytest.mark.parametrize(
    ("model", "style", "allowed"),
    [
        ("gpt2_es", "novel", ("auto", "bible", "plain")),
        ("gpt2_en", "verse", ("auto", "bible", "novel", "play", "plain")),
        ("old_en", "novel", ("auto", "verse", "screenplay", "tale", "plain")),
    ],
)
def test_a_style_the_model_lacks_is_refused_naming_the_allowed_ones(
    styled: tuple[httpx.Client, list[dict[str, Any]]],
    jpeg: bytes,
    model: str,
    style: str,
    allowed: tuple[str, ...],
) -> None:
    client, seen = styled
    before = len(seen)
    body = assert_problem(story(client, jpeg, model=model, style=style), 422, style, *allowed)
    assert body["errors"][0]["field"] == "style"
    assert len(seen) == before  # refused before any model ran


def test_the_genre_goes_to_textgen_and_auto_is_the_first(
    styled: tuple[httpx.Client, list[dict[str, Any]]], jpeg: bytes
) -> None:
    client, seen = styled

    def tell(**form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        response = story(client, jpeg, seed=1, max_new_tokens=20, **form)
        assert response.status_code == 200, response.text
        return response.json(), seen[-1]

    body, sent = tell()  # the default model, auto
    assert body["prompt"]["style"] == sent["style"] == "bible"
    assert sent["prompt"].startswith("And it came to pass")
    body, sent = tell(model="gpt2_en", style="play")
    assert body["prompt"]["style"] == sent["style"] == "play"
    assert sent["prompt"].startswith("ACT I. SCENE I.") and "\n\nEnter " in sent["prompt"]
    body, sent = tell(model="gpt2_en", style="novel")
    assert sent["style"] == "novel" and sent["prompt"].startswith("It was a quiet ")
    body, sent = tell(model="gpt2_es")
    assert sent["style"] == "bible" and sent["prompt"].startswith("Y aconteció")
    assert body["prompt"]["language"] == "es" and body["story"].startswith(sent["prompt"])
    _, sent = tell(model="gpt2_fr", style="plain")  # the caption alone: no genre named
    assert "style" not in sent
    _, sent = tell(model="old_en", style="verse")  # a model without style tokens
    assert "style" not in sent and sent["prompt"].startswith("And it came to pass")
