from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from talkative_common.model_client import ModelClient, ModelRepository
from talkative_common.model_client.grpc import GrpcClient
from talkative_common.model_client.inprocess import InProcessClient
from talkative_common.model_client.remote import RemoteOptions
from talkative_common.model_client.rest import RestClient
from tests.support.model_server import ModelServerProcess, serve_repository


@pytest.fixture(scope="module")
def model_server(
    tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServerProcess]:
    """`talkative model-server` serving tiny_en, as TF Serving would."""
    with serve_repository(tiny_repository, tmp_path_factory.mktemp("model_server")) as server:
        yield server


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
