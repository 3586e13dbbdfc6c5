from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from talkative_common.model_client import ModelClient, ModelRepository
from talkative_common.model_client.grpc import GrpcClient
from talkative_common.model_client.inprocess import InProcessClient
from talkative_common.model_client.remote import RemoteOptions
from talkative_common.model_client.rest import RestClient
from tests.support.model_server import ModelServerProcess, StartModelServer, serve_repository


@pytest.fixture(scope="module")
def start_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartModelServer]:
    """Start `talkative model-server` on a repository (newest version of every model, as TF
    Serving would serve it), with `serve_repository`'s options; stopped after the module."""
    with ExitStack() as running:

        def start(repository: Path, **options: Any) -> ModelServerProcess:
            workdir = tmp_path_factory.mktemp("model_server")
            return running.enter_context(serve_repository(repository, workdir, **options))

        yield start


@pytest.fixture(scope="module")
def model_server(start_model_server: StartModelServer, tiny_repository: Path) -> ModelServerProcess:
    """`talkative model-server` serving tiny_en."""
    return start_model_server(tiny_repository)


@pytest.fixture(scope="session")
def two_version_repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_en as versions 1 and 2 (same graph), as during a canary."""
    root = tmp_path_factory.mktemp("two_versions")
    for version in ("1", "2"):
        shutil.copytree(tiny_repository / "tiny_en" / "1", root / "tiny_en" / version)
    return root


def make_client(
    backend: str, server: ModelServerProcess, repository: Path, **options: object
) -> ModelClient:
    opts = RemoteOptions(**options)  # type: ignore[arg-type]
    if backend == "inprocess":
        return InProcessClient(ModelRepository(repository), timeout_s=opts.timeout_s)
    if backend == "grpc":
        return GrpcClient(server.grpc_target, opts, reconnect_backoff_max_s=0.5)
    return RestClient(server.rest_url, opts)
