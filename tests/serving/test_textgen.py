"""textgen-service on the gRPC and REST backends: same answers, contract check, outages."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from talkative_common.model_client import ContractMismatch, ModelNotFound
from tests.support.model_server import ModelServerProcess, StartModelServer, serve_repository
from tests.support.servers import serve
from tests.support.text_models import export_broken_generate
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

REQUEST = {"prompt": "And the king", "model": "tiny_en", "max_new_tokens": 40, "seed": 11}


def settings(
    backend: str, server: ModelServerProcess, repository: Path, **extra
) -> TextgenSettings:
    return TextgenSettings(
        model_repository=repository,
        default_model="tiny_en",
        model_backend=backend,
        model_server_host="127.0.0.1",
        model_server_grpc_port=server.grpc_port,
        model_server_rest_port=server.rest_port,
        **extra,
    )


def test_same_story_from_every_backend(model_server, tiny_repository):
    answers = {}
    for backend in ("inprocess", "grpc", "rest"):
        with serve(create_app(settings(backend, model_server, tiny_repository))) as url:
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            response = httpx.post(f"{url}/v1/generations", json=REQUEST | {"temperature": 0.9})
            assert response.status_code == 200, response.text
            answers[backend] = response.json()
    assert answers["inprocess"]["tokens"] == 40
    assert answers["grpc"] == answers["inprocess"]
    assert answers["rest"] == answers["inprocess"]


@pytest.fixture(scope="module")
def mismatched_repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_en's card and vocabulary beside a graph whose `generate` breaks the contract:
    a scalar temperature (TF Serving could not batch it) and no seed."""

    root = tmp_path_factory.mktemp("mismatched")
    export_broken_generate(
        root / "tiny_en" / "1", assets=tiny_repository / "tiny_en" / "1" / "assets.extra"
    )
    return root


@pytest.fixture(scope="module")
def mismatch_server(
    start_model_server: StartModelServer, mismatched_repository: Path
) -> ModelServerProcess:
    return start_model_server(mismatched_repository)


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_contract_mismatch_is_refused_at_start_up(backend, mismatch_server, mismatched_repository):
    app = create_app(settings(backend, mismatch_server, mismatched_repository))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ContractMismatch) as info:
        asyncio.run(start())
    message = str(info.value)
    assert "'temperature' has rank 0, expected 1" in message
    assert "'seed' is missing" in message


def problem(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json")
    return json.loads(response.text)


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_model_server_down_gives_503_then_recovers(backend, tiny_repository, tmp_path):
    server = serve_repository(tiny_repository, tmp_path).start()
    config = settings(backend, server, tiny_repository, model_retries=1, model_retry_backoff_s=0.05)
    try:
        with serve(create_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/v1/generations", json=REQUEST).status_code == 200
            server.stop()
            down = client.post("/v1/generations", json=REQUEST)
            assert down.status_code == 503
            assert int(down.headers["retry-after"]) > 0
            assert "unavailable" in problem(down)["detail"]
            server.start()  # same ports, as a restarted container
            # gRPC reconnects with a capped backoff: a few 503s may precede the recovery.
            statuses = []
            for _ in range(50):
                statuses.append(client.post("/v1/generations", json=REQUEST).status_code)
                if statuses[-1] == 200:
                    break
            assert statuses[-1] == 200, statuses
            assert set(statuses) <= {200, 503}
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_slow_model_server_hits_the_deadline_and_gives_503(backend, model_server, tiny_repository):
    config = settings(backend, model_server, tiny_repository, model_timeout_s=2.0)
    with serve(create_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
        model_server.hold()
        try:
            slow = client.post("/v1/generations", json=REQUEST)
        finally:
            model_server.release()
        assert slow.status_code == 503, slow.text
        assert "retry-after" in slow.headers
        assert problem(slow)["status"] == 503
        assert client.post("/v1/generations", json=REQUEST).status_code == 200


def test_a_model_folder_not_yet_listed_is_skipped_not_fatal(
    model_server, tiny_repository, tmp_path
):
    """A model copied onto the host before models.config lists it: the model server does
    not serve it, so the service starts without it instead of crash-looping; asked for by
    name (TEXTGEN_MODELS), it stops the start-up with an error that names it."""
    repository = tmp_path / "models"
    shutil.copytree(tiny_repository / "tiny_en", repository / "tiny_en")
    shutil.copytree(tiny_repository / "tiny_en", repository / "tiny_new")
    config = settings("grpc", model_server, repository)
    with serve(create_app(config)) as url:
        listed = [m["name"] for m in httpx.get(f"{url}/v1/models").json()["models"]]
    assert listed == ["tiny_en"]
    app = create_app(settings("grpc", model_server, repository, models=["tiny_en", "tiny_new"]))

    async def start_up() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ModelNotFound, match="tiny_new"):
        asyncio.run(start_up())
