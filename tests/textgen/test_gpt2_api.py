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
STYLED = "tiny_gpt2_styled"
STYLE_TOKENS = ["<|bible|>", "<|novel|>"]


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

    # A styled model, as a styled corpus trains one: each genre a special token.
    styled_tok = repo.parent / "gpt2_styled_tokenizer.json"
    styled = [f"<|{s}|>\n{t}" for s in ("bible", "novel") for t in texts]
    train_bpe(styled, 300, show_progress=False, special_tokens=STYLE_TOKENS).save(str(styled_tok))
    export_weights(weights, config, styled_tok, repo / STYLED / "1", _card(STYLED))
    return repo


@pytest.fixture(scope="module")
def textgen_settings(repository: Path) -> TextgenSettings:
    """The service of this module: both families (conftest.py serves it)."""
    return TextgenSettings(
        model_repository=repository,
        models=["tiny_en", "tiny_gpt2", STYLED],
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
    assert kinds == {"tiny_en": "char_lstm", "tiny_gpt2": "gpt2", STYLED: "gpt2"}
    gpt2 = next(m for m in body["models"] if m["name"] == "tiny_gpt2")
    # The window slides: the service's own limit (500 here) is the longest story.
    assert gpt2["max_new_tokens"] == 500
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
    # Far more tokens than the context (unseen letters are single bytes to this BPE).
    prompt = "and the king said unto the people " * 4 + "zqxjvw" * 25
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
        # The controls off: the probe above decoded without them.
        off = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
        body = post(c, model="stopper", prompt="The king", temperature=0.0, **off).json()
    assert body["finish_reason"] == "stop" and body["tokens"] == first < 20


def test_a_request_without_a_model_gets_the_default(client: httpx.Client) -> None:
    """TEXTGEN_DEFAULT_MODEL (tiny_en here), not a name fixed in the request schema."""
    response = client.post("/v1/generations", json={"prompt": "And the king", "seed": 1})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny_en"


# -- repetition controls (generate_controlled) -------------------------------------------


def _direct(repository: Path, prompt: str, n: int, penalty: float, ngram: int) -> str:
    """The export's generate_controlled called directly, greedy: what the service must say."""
    from tokenizers import Tokenizer

    version = repository / "tiny_gpt2" / "1"
    tok = Tokenizer.from_file(str(version / "assets.extra" / "tokenizer.json"))
    ids = tok.encode(prompt, add_special_tokens=False).ids
    fn = tf.saved_model.load(str(version)).signatures["generate_controlled"]
    out = fn(
        prompt_ids=tf.constant([ids], tf.int32),
        prompt_lengths=tf.constant([len(ids)], tf.int32),
        max_new_tokens=tf.constant([n], tf.int32),
        temperature=tf.constant([0.0]),
        top_k=tf.constant([0]),
        top_p=tf.constant([1.0]),
        seed=tf.constant([0], tf.int64),
        repetition_penalty=tf.constant([penalty]),
        no_repeat_ngram_size=tf.constant([ngram], tf.int32),
    )
    length = int(out["lengths"].numpy()[0])
    text = tok.decode(out["token_ids"].numpy()[0, :length].tolist(), skip_special_tokens=True)
    return str(text).rstrip("\ufffd")  # as the service: no half character at the end


def test_models_list_their_repetition_controls(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    options = models["tiny_gpt2"]["generation_options"]
    assert options["repetition_penalty"]["default"] == 1.1
    assert options["no_repeat_ngram_size"] == {
        "default": 4,
        "off": 0,
        "minimum": 0,
        "maximum": 16,
    }
    assert models["tiny_gpt2"]["card"]["signatures"] == ["generate", "generate_controlled"]
    assert models["tiny_en"]["generation_options"] == {}


def test_repetition_controls_reach_the_graph(client: httpx.Client, repository: Path) -> None:
    prompt = "And the king said"
    texts = set()
    for sent, used in (
        ({"repetition_penalty": 1.5, "no_repeat_ngram_size": 2}, (1.5, 2)),
        ({"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}, (1.0, 0)),
        ({}, (1.1, 4)),  # omitted: the card's defaults
    ):
        body = post(client, prompt=prompt, temperature=0.0, max_new_tokens=30, **sent).json()
        assert body["text"] == _direct(repository, prompt, 30, *used), sent
        texts.add(body["text"])
    assert len(texts) == 3  # each setting changes this greedy text


def test_stories_longer_than_the_context(client: httpx.Client) -> None:
    body = post(client, max_new_tokens=3 * CONTEXT, no_repeat_ngram_size=0).json()
    assert body["finish_reason"] == "stop" or body["tokens"] == 3 * CONTEXT


def test_a_model_without_the_controls_refuses_them(client: httpx.Client) -> None:
    for field, value in (("repetition_penalty", 1.3), ("no_repeat_ngram_size", 3)):
        response = post(client, model="tiny_en", top_k=0, **{field: value})
        assert response.status_code == 422, response.text
        problem = response.json()
        assert field in problem["detail"] and "generate_controlled" in problem["detail"]
        assert problem["errors"][0]["field"] == field
    off = post(client, model="tiny_en", top_k=0, repetition_penalty=1.0, no_repeat_ngram_size=0)
    assert off.status_code == 200, off.text


@pytest.mark.parametrize(
    "field, value",
    [("repetition_penalty", 0.5), ("repetition_penalty", 2.5), ("no_repeat_ngram_size", 17)],
)
def test_repetition_controls_out_of_range(client: httpx.Client, field: str, value: float) -> None:
    response = post(client, **{field: value})
    assert response.status_code == 422 and field in response.text


def test_a_style_opens_the_text_with_its_token(client: httpx.Client, repository: Path) -> None:
    """A styled model reads [end] <|style|> "\\n" before the prompt, as every training
    document began; the answer's text and prompt carry no token."""
    from tokenizers import Tokenizer

    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models[STYLED]["styles"] == ["bible", "novel"]
    assert models["tiny_gpt2"]["styles"] == [] and models["tiny_en"]["styles"] == []

    # Greedy, controls off: what the plain `generate` signature computes.
    prompt = "And the king said"
    greedy = {"temperature": 0.0, "max_new_tokens": 12}
    greedy |= {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
    answers = {}
    for style in ("bible", "novel"):
        response = post(client, model=STYLED, prompt=prompt, style=style, **greedy)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "<|" not in body["text"] and body["normalisation"]["prompt"] == prompt
        answers[style] = body["text"]

    # The same greedy continuation from the graph itself, given the opening by hand.
    version = repository / STYLED / "1"
    tokenizer = Tokenizer.from_file(str(version / "assets.extra" / "tokenizer.json"))
    generate = tf.saved_model.load(str(version)).signatures["generate"]
    for style, text in answers.items():
        opening = [0, tokenizer.token_to_id(f"<|{style}|>"), *tokenizer.encode("\n").ids]
        ids = opening + tokenizer.encode(prompt).ids
        out = generate(
            prompt_ids=tf.constant([ids], tf.int32),
            prompt_lengths=tf.constant([len(ids)], tf.int32),
            max_new_tokens=tf.constant([12], tf.int32),
            temperature=tf.constant([0.0]),
            top_k=tf.constant([0], tf.int32),
            top_p=tf.constant([1.0]),
            seed=tf.constant([0], tf.int64),
        )
        length = int(out["lengths"][0])
        expected = tokenizer.decode(out["token_ids"][0][:length].numpy().tolist())
        assert text == expected.rstrip("\ufffd"), style


def test_an_unknown_style_is_refused_naming_the_known_ones(client: httpx.Client) -> None:
    response = post(client, model=STYLED, style="play")
    assert response.status_code == 422, response.text
    assert "bible, novel" in response.text and "style" in response.text
    # A model without style tokens takes none.
    response = post(client, model="tiny_gpt2", style="bible")
    assert response.status_code == 422 and "no style tokens" in response.text
    response = post(client, model=STYLED, style="Not A Style!")
    assert response.status_code == 422
