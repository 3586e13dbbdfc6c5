"""caption-service and textgen-service in the grpc backend load no TensorFlow.

Each service runs as its own process (`python -X importtime -c "... run()"`, what its
container runs) against `talkative model-server`, serves a real request, and then its
/proc/<pid>/maps must show no TensorFlow library and its import log no `tensorflow`
module. The model server, which runs the graphs, is the control: the same check finds
TensorFlow in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.captioner import CAPTIONS, build_captioner, photo
from tests.support.model_server import ModelServerProcess, StartModelServer
from tests.support.service_process import ServiceProcess, grpc_backend_env, tensorflow_mappings

TENSORFLOW = ("tensorflow", "tensorflow_serving", "keras", "tf_keras")


@pytest.fixture(scope="module")
def lean_repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_en and the test captioner in one repository, as serving/models holds both."""
    repo = tmp_path_factory.mktemp("lean_models")
    shutil.copytree(tiny_repository / "tiny_en", repo / "tiny_en")
    build_captioner(repo)
    return repo


@pytest.fixture(scope="module")
def server(start_model_server: StartModelServer, lean_repository: Path) -> ModelServerProcess:
    return start_model_server(lean_repository, rest=False)


def _tensorflow_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in TENSORFLOW)


def _check_lean(service: ServiceProcess) -> None:
    modules = service.imported_modules()
    # The grpc backend really ran, on the classes built from the descriptor set...
    assert {
        "grpc",
        "talkative_common.model_client.grpc",
        "talkative_common.model_client.protos.tf_serving",
    } <= (modules)
    # ...and no TensorFlow came with it, neither as Python modules nor as libraries.
    assert _tensorflow_modules(modules) == []
    assert service.tensorflow_mappings() == []


def test_the_check_finds_tensorflow_in_the_model_server(server: ModelServerProcess) -> None:
    assert server.process is not None
    assert any("libtensorflow" in path for path in tensorflow_mappings(server.process.pid))


def test_caption_service_in_grpc_backend_loads_no_tensorflow(
    server: ModelServerProcess, lean_repository: Path, tmp_path: Path
) -> None:
    env = grpc_backend_env("caption-service", server.grpc_port, lean_repository)
    with ServiceProcess("caption-service", env, importtime=True, workdir=tmp_path) as service:
        answer = httpx.post(
            f"{service.url}/v1/captions",
            files={"image": ("chelsea.jpg", photo("chelsea", "JPEG"), "image/jpeg")},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["captions"][0]["text"] == CAPTIONS["chelsea"].lower()
        _check_lean(service)


def test_textgen_service_in_grpc_backend_loads_no_tensorflow(
    server: ModelServerProcess, lean_repository: Path, tmp_path: Path
) -> None:
    env = grpc_backend_env(
        "textgen-service",
        server.grpc_port,
        lean_repository,
        MODELS='["tiny_en"]',
        DEFAULT_MODEL="tiny_en",
    )
    with ServiceProcess("textgen-service", env, importtime=True, workdir=tmp_path) as service:
        request = {"prompt": "The ", "model": "tiny_en", "max_new_tokens": 20, "seed": 3}
        answer = httpx.post(f"{service.url}/v1/generations", json=request, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "tiny_en" and answer.json()["text"]
        _check_lean(service)


def test_remote_clients_work_with_tensorflow_unimportable() -> None:
    """Every module of the grpc and rest paths imports, and builds requests, with no TF at all."""
    code = """
import sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras"):
            raise ImportError(f"{name} imported on the remote path")

sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
import caption_service.main, textgen_service.main
from talkative_common.model_client import grpc, rest
from talkative_common.model_client.tensors import from_tensor_proto, to_tensor_proto
from talkative_common.model_client.protos import tf_serving as pb

request = pb.PredictRequest()
request.inputs["x"].CopyFrom(to_tensor_proto(np.array([[1, 2]], np.int32)))
back = pb.PredictRequest.FromString(request.SerializeToString())
assert from_tensor_proto(back.inputs["x"]).tolist() == [[1, 2]]
grpc.GrpcClient("127.0.0.1:1")._callable(pb.PREDICT)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
