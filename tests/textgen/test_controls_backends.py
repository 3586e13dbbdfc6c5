"""textgen-service with a sliding-window GPT-2 behind the model server (gRPC and REST):
the repetition controls reach `generate_controlled` and long stories pass the context,
with the same answers as in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.model_server import ModelServerProcess, serve_repository
from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

CONTEXT = 16


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    from training.gpt2.export import export_weights
    from training.gpt2.model import build_model, preset, to_weights
    from training.gpt2.tokenizer import train_bpe

    repo = tmp_path_factory.mktemp("controlled_models")
    tok = repo.parent / "controlled_tokenizer.json"
    train_bpe(["And the king said unto the people."] * 20, 300, show_progress=False).save(str(tok))
    keras.utils.set_random_seed(2)
    config = preset("tiny", 300, n_positions=CONTEXT)
    weights = {
        k: v * (6.0 if v.ndim == 2 else 1.0) for k, v in to_weights(build_model(config)).items()
    }
    card = {"name": "slide", "language": "en", "description": "tiny test GPT-2", "licence": "CC0"}
    export_weights(weights, config, tok, repo / "slide" / "1", card)
    return repo


@pytest.fixture(scope="module")
def model_server(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServerProcess]:
    with serve_repository(repository, tmp_path_factory.mktemp("model_server")) as running:
        yield running


BASE = {"prompt": "And the king", "max_new_tokens": 50, "temperature": 0.0, "seed": 3}
REQUESTS = [
    BASE,  # the card's defaults
    BASE | {"temperature": 0.8, "repetition_penalty": 1.4},
    BASE | {"no_repeat_ngram_size": 2},
    BASE | {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0},
]


def test_controls_and_long_stories_on_every_backend(
    repository: Path, model_server: ModelServerProcess
) -> None:
    answers: dict[str, list[dict[str, Any]]] = {}
    for backend in ("inprocess", "grpc", "rest"):
        settings = TextgenSettings(
            model_repository=repository,
            default_model="slide",
            model_backend=backend,
            model_server_host="127.0.0.1",
            model_server_grpc_port=model_server.grpc_port,
            model_server_rest_port=model_server.rest_port,
            max_new_tokens_limit=300,
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
            listed = c.get("/v1/models").json()["models"][0]
            assert listed["max_new_tokens"] == 300  # the service's limit, not the context
            answers[backend] = []
            for body in REQUESTS:
                response = c.post("/v1/generations", json=body)
                assert response.status_code == 200, response.text
                answers[backend].append(response.json())
    texts = [a["text"] for a in answers["inprocess"]]
    assert len(set(texts)) == len(texts)  # every control changes the text
    assert answers["inprocess"][0]["tokens"] > CONTEXT  # past the context
    assert answers["grpc"] == answers["inprocess"]
    assert answers["rest"] == answers["inprocess"]
