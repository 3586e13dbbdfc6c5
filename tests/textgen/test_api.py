"""textgen-service over real HTTP on 127.0.0.1: the good paths and every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.generations import GOOD
from tests.support.generations import post_generation as post
from tests.support.problems import assert_problem


def test_generation(client: httpx.Client) -> None:
    body = post(client).json()
    assert body["model"] == "tiny_en"
    assert body["tokens"] == 30 and len(body["text"]) == 30
    assert body["finish_reason"] == "length" and body["seed"] == 42
    assert body["normalisation"] == {
        "changed": False,
        "prompt": "And the king said",
        "replaced": {},
    }


def test_same_seed_same_text_different_seed_different_text(client: httpx.Client) -> None:
    a, b = post(client).json()["text"], post(client).json()["text"]
    c = post(client, seed=43).json()["text"]
    assert a == b != c


def test_missing_seed_is_chosen_and_returned(client: httpx.Client) -> None:
    first = post(client, seed=None).json()
    again = post(client, seed=first["seed"]).json()
    assert again["text"] == first["text"]


def test_prompt_is_fitted_to_the_alphabet(client: httpx.Client) -> None:
    body = post(client, prompt="\u201cAnd the king\u201d said \U0001f600 \u00e9t\u00e9").json()
    norm = body["normalisation"]
    assert norm["changed"] is True
    assert norm["prompt"] == "And the king said été"
    assert norm["replaced"]["\U0001f600"] == ""


def test_a_raw_prompt_is_fitted_and_the_fitted_prompt_returned(client: httpx.Client) -> None:
    """Clients send prompts as written; the answer says what the model read, in the
    characters /v1/models publishes for it."""
    (model,) = client.get("/v1/models").json()["models"]
    known = set(model["alphabet"])
    prompt = "Ça, c’est l’été — 2024 ☃ « ZOË »"
    assert not set(prompt) <= known
    body = post(client, prompt=prompt).json()
    read = body["normalisation"]["prompt"]
    assert read and set(read) <= known and body["normalisation"]["changed"] is True
    assert set(prompt) - known <= set(body["normalisation"]["replaced"])
    again = post(client, prompt=read).json()  # what was read is read as it is
    assert again["normalisation"]["changed"] is False and again["text"] == body["text"]


def test_models_publish_how_they_read_a_prompt(client: httpx.Client, tiny_repository: Path) -> None:
    (model,) = client.get("/v1/models").json()["models"]
    vocab = json.loads((tiny_repository / "tiny_en/1/assets.extra/vocab.json").read_text())
    assert model["tokenizer"] == "characters"
    assert model["alphabet"] == vocab["chars"]  # in vocabulary order


def test_a_prompt_with_nothing_readable_is_a_clear_422(client: httpx.Client) -> None:
    problem = assert_problem(post(client, prompt="中文 😀"), 422, "no character")
    assert problem["detail"] == (
        "The prompt has no character that tiny_en knows; "
        "write it in the model's language and alphabet."
    )
    assert problem["errors"] == [{"field": "prompt", "message": "nothing left after normalisation"}]


def test_an_unknown_model_keeps_its_problem_document(client: httpx.Client) -> None:
    problem = assert_problem(post(client, model="gpt9"), 404, "unknown model")
    assert problem["title"] == "Unknown model"
    assert problem["errors"] == [{"field": "model", "message": "no such model"}]


def test_models_are_described_from_their_cards(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["default"] == "tiny_en"
    (model,) = body["models"]
    assert model["name"] == "tiny_en" and model["kind"] == "char_lstm" and model["version"] == 1
    assert model["language"] == "en" and model["parameters"] > 0
    assert "nats_per_char" in model["held_out_loss"]


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"prompt": ""}, 422, ["prompt"]),
        ({"prompt": "   "}, 422, ["no character"]),
        ({"prompt": "\U0001f600\U0001f680"}, 422, ["no character"]),
        ({"prompt": "a" * 301}, 422, ["at most 300"]),
        ({"model": "gpt9"}, 404, ["unknown model", "tiny_en"]),
        ({"model": "../etc/passwd"}, 422, ["model"]),
        ({"max_new_tokens": 0}, 422, ["max_new_tokens"]),
        ({"max_new_tokens": 501}, 422, ["at most 500"]),
        ({"temperature": -0.1}, 422, ["temperature"]),
        ({"temperature": 2.5}, 422, ["temperature"]),
        ({"top_k": -1}, 422, ["top_k"]),
        ({"top_p": 0}, 422, ["top_p"]),
        ({"top_p": 1.5}, 422, ["top_p"]),
        ({"seed": -1}, 422, ["seed"]),
        ({"seed": 2**63}, 422, ["seed"]),
        ({"max_new_tokens": "30"}, 422, ["max_new_tokens"]),
        ({"max_new_tokens": 3.5}, 422, ["max_new_tokens"]),
        ({"temperature": "hot"}, 422, ["temperature"]),
        ({"top_k": True}, 422, ["top_k"]),
        ({"prompt": 12}, 422, ["prompt"]),
        ({"prompt": None}, 422, ["prompt"]),
        ({"temprature": 0.5}, 422, ["temprature", "unknown field"]),
    ],
)
def test_bad_inputs(
    client: httpx.Client, overrides: dict[str, Any], status: int, words: list[str]
) -> None:
    assert_problem(post(client, **overrides), status, *words)


@pytest.mark.parametrize("field", ["temperature", "top_p"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_named_as_such(client: httpx.Client, field: str, value: str) -> None:
    """Python's JSON reader takes NaN and Infinity; they used to be refused as "less than or
    equal to 2", which sends the user looking for the wrong mistake."""
    body = (
        json.dumps({k: v for k, v in GOOD.items() if k != field})[:-1] + f', "{field}": {value}}}'
    )
    r = client.post("/v1/generations", content=body, headers={"content-type": "application/json"})
    assert_problem(r, 422, field, "finite number")


def test_missing_prompt(client: httpx.Client) -> None:
    body = {k: v for k, v in GOOD.items() if k != "prompt"}
    problem = assert_problem(client.post("/v1/generations", json=body), 422, "prompt", "required")
    assert problem["errors"] == [{"field": "prompt", "message": "this field is required"}]


def test_body_that_is_not_json(client: httpx.Client) -> None:
    r = client.post(
        "/v1/generations", content=b"{prompt: oops", headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "json")


def test_body_that_is_not_an_object(client: httpx.Client) -> None:
    assert_problem(client.post("/v1/generations", json=["a", "b"]), 422)


def test_body_too_large(client: httpx.Client) -> None:
    r = client.post("/v1/generations", json={**GOOD, "prompt": "a" * 100_000})
    assert_problem(r, 413, "larger than")


def test_body_too_large_without_content_length(client: httpx.Client) -> None:
    def chunks():  # streamed: no Content-Length header, the limit still holds
        for _ in range(100):
            yield b"a" * 1000

    r = client.post(
        "/v1/generations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(r, 413)


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.get("/v1/generations"), 405)


def test_operations_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["tiny_en"] == "v1 ready"
    post(client)
    metrics = client.get("/metrics").text
    assert (
        'http_requests_total{method="POST",route="/v1/generations",service="textgen",status="200"}'
        in metrics
    )
    assert client.get("/openapi.json").json()["paths"]["/v1/generations"]
    assert client.get("/docs").status_code == 200


def test_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    assert (
        client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
