"""textgen-service serving GPT-2 and char-LSTM models side by side, over real HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import tensorflow as tf

from tests.support.generations import GOOD as CHAR_LSTM_GOOD
from tests.support.generations import post_generation
from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

CONTEXT = 64  # the tiny preset's


def _card(name: str) -> dict[str, Any]:
    return {"name": name, "language": "en", "description": "tiny test GPT-2", "licence": "CC0"}


@pytest.fixture(scope="module")
def repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    from training.gpt2.export import export_weights
    from training.gpt2.model import build_model, preset, to_weights
    from training.gpt2.tokenizer import train_bpe

    repo = tmp_path_factory.mktemp("mixed_models")
    shutil.copytree(tiny_repository / "tiny_en", repo / "tiny_en")
    tok = repo.parent / "gpt2_tokenizer.json"
    texts = ["And the king said unto the people, Go ye and sow the field."] * 40
    train_bpe(texts, 300, show_progress=False).save(str(tok))
    keras.utils.set_random_seed(2)
    config = preset("tiny", 300)
    weights = {
        k: v * (6.0 if v.ndim == 2 else 1.0) for k, v in to_weights(build_model(config)).items()
    }
    export_weights(weights, config, tok, repo / "tiny_gpt2" / "1", _card("tiny_gpt2"))

    return repo


@pytest.fixture(scope="module")
def textgen_settings(repository: Path) -> TextgenSettings:
    """The service of this module: both families (conftest.py serves it)."""
    return TextgenSettings(
        model_repository=repository,
        models=["tiny_en", "tiny_gpt2"],
        default_model="tiny_en",
        max_prompt_chars=300,
        max_new_tokens_limit=500,
    )


GOOD = CHAR_LSTM_GOOD | {"model": "tiny_gpt2", "max_new_tokens": 20, "top_k": 40}


def post(client: httpx.Client, **overrides: Any) -> httpx.Response:
    return post_generation(client, GOOD, **overrides)


def test_both_families_are_listed_from_their_cards(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    kinds = {m["name"]: m["kind"] for m in body["models"]}
    assert kinds == {"tiny_en": "char_lstm", "tiny_gpt2": "gpt2"}
    gpt2 = next(m for m in body["models"] if m["name"] == "tiny_gpt2")
    assert gpt2["max_new_tokens"] == CONTEXT - CONTEXT // 4  # a quarter kept for the prompt
    assert gpt2["card"]["tokenizer"]["type"] == "byte_level_bpe"
    # How each reads a prompt, published so that no client has to guess by kind.
    assert gpt2["tokenizer"] == "byte_level_bpe" and gpt2["alphabet"] is None
    lstm = next(m for m in body["models"] if m["name"] == "tiny_en")
    assert lstm["tokenizer"] == "characters" and "a" in lstm["alphabet"]
    assert gpt2["parameters"] > 0


def test_gpt2_generation_is_seeded(client: httpx.Client) -> None:
    a, b = post(client).json(), post(client).json()
    assert a["model"] == "tiny_gpt2" and a["seed"] == 42
    assert a["text"] == b["text"] and 1 <= a["tokens"] <= 20
    assert a["finish_reason"] == ("length" if a["tokens"] == 20 else "stop")
    others = {post(client, seed=s).json()["text"] for s in range(43, 47)}
    assert len(others | {a["text"]}) > 1


def test_models_are_chosen_by_name(client: httpx.Client) -> None:
    lstm = post(client, model="tiny_en", top_k=0).json()
    assert lstm["model"] == "tiny_en" and len(lstm["text"]) == 20


def test_gpt2_reads_any_text_unchanged(client: httpx.Client) -> None:
    prompt = "« Voilà l'été » 🙂\tand\u0007 the king"
    body = post(client, prompt=prompt).json()
    assert body["normalisation"] == {"changed": False, "prompt": prompt, "replaced": {}}


def test_greedy_is_deterministic_whatever_the_seed(client: httpx.Client) -> None:
    a = post(client, temperature=0.0, seed=1).json()["text"]
    assert post(client, temperature=0.0, seed=2).json()["text"] == a


def test_the_advertised_length_works_with_any_prompt(client: httpx.Client) -> None:
    """The length /v1/models offers never fails: a prompt too long for the room left keeps
    its end, and the answer says what was read. Beyond that length: a 422 that says why."""
    offered = next(
        m["max_new_tokens"] for m in client.get("/v1/models").json()["models"]
        if m["name"] == "tiny_gpt2"
    )  # fmt: skip
    prompt = "and the king said unto the people " * 8  # far more tokens than the room left
    body = post(client, prompt=prompt, max_new_tokens=offered).json()
    assert body["tokens"] <= offered and body["finish_reason"] in ("length", "stop")
    read = body["normalisation"]["prompt"]
    assert read and len(read) < len(prompt) and prompt.endswith(read)
    short = post(client, prompt="The king", max_new_tokens=offered).json()
    assert short["normalisation"]["prompt"] == "The king"  # a prompt that fits is kept whole
    over = post(client, max_new_tokens=offered + 1)
    assert over.status_code == 422 and f"at most {offered}" in over.json()["detail"]
    assert over.headers["content-type"].startswith("application/problem+json")


def test_white_space_prompt_is_refused(client: httpx.Client) -> None:
    response = post(client, prompt=" \n\t ")
    assert response.status_code == 422
    assert "white space" in response.json()["detail"]


def test_end_token_gives_finish_reason_stop(repository: Path, tmp_path: Path) -> None:
    from training.gpt2.export import GPT2Generator, weights_from_export
    from training.gpt2.tokenizer import encode, load
    from training.sampling import save_generator

    source = repository / "tiny_gpt2" / "1"
    card = json.loads((source / "assets.extra/model_card.json").read_text())
    tok = load(source / "assets.extra/tokenizer.json")
    weights, config, _ = weights_from_export(source)
    ids = encode(tok, "The king")
    probe = GPT2Generator(weights, config, end_id=-1)
    out = probe.generate(
        tf.constant([ids], tf.int32),
        tf.constant([len(ids)]),
        tf.constant([5]),
        tf.constant([0.0]),
        tf.constant([0]),
        tf.constant([1.0]),
        tf.constant([0], tf.int64),
    )
    third = int(out["token_ids"].numpy()[0, 2])
    stop_repo = tmp_path / "models"
    version = stop_repo / "stopper" / "1"
    save_generator(GPT2Generator(weights, config, end_id=third), version)
    shutil.copytree(source / "assets.extra", version / "assets.extra", dirs_exist_ok=True)
    card |= {"name": "stopper", "tokenizer": {**card["tokenizer"], "end_id": third}}
    (version / "assets.extra/model_card.json").write_text(json.dumps(card))
    first = out["token_ids"].numpy()[0].tolist().index(third)
    settings = TextgenSettings(model_repository=stop_repo, default_model="stopper")
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        body = post(c, model="stopper", prompt="The king", temperature=0.0).json()
    assert body["finish_reason"] == "stop" and body["tokens"] == first < 20


def test_a_request_without_a_model_gets_the_default(client: httpx.Client) -> None:
    """TEXTGEN_DEFAULT_MODEL (tiny_en here), not a name fixed in the request schema."""
    response = client.post("/v1/generations", json={"prompt": "And the king", "seed": 1})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny_en"
