"""deploy/k8s/base/serving-config/healthcheck.sh, TF Serving's compose healthcheck (and
Kubernetes probe), run as the container runs it.

The model part talks to `talkative model-server` (TF Serving's REST API) over the same
bare HTTP/1.0 request; the GPU part reads a made-up process table (PROC_ROOT), since no
test machine has a GPU: on a GPU host the CUDA driver holds /dev/nvidia<N> open in the
tensorflow_model_server process once TensorFlow has set up its GPU device.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.model_server import ModelServerProcess, serve_repository
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "k8s" / "base" / "serving-config" / "healthcheck.sh"


def healthcheck(*models: str, port: int = 8501, **env: str) -> tuple[int, str]:
    result = subprocess.run(
        ["bash", str(SCRIPT), *models],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "TFSERVING_REST_PORT": str(port), **env},
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def labelled_server(
    tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServerProcess]:
    server = serve_repository(
        tiny_repository,
        tmp_path_factory.mktemp("healthcheck"),
        labels={"tiny_en": {"stable": 1}},
    )
    with server:
        yield server


def fake_process(proc: Path, pid: int, argv: list[str], fds: dict[int, str]) -> None:
    folder = proc / str(pid)
    (folder / "fd").mkdir(parents=True)
    (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    for number, target in fds.items():
        (folder / "fd" / str(number)).symlink_to(target)


def test_healthy_when_every_model_is_available(labelled_server: ModelServerProcess) -> None:
    code, out = healthcheck("tiny_en", port=labelled_server.rest_port, TFSERVING_REQUIRE_GPU="0")
    assert code == 0, out


def test_unhealthy_when_a_model_is_not_available(labelled_server: ModelServerProcess) -> None:
    code, out = healthcheck(
        "tiny_en", "gpt2_xx", port=labelled_server.rest_port, TFSERVING_REQUIRE_GPU="0"
    )
    assert code == 1 and "gpt2_xx is not AVAILABLE" in out, out


def test_unhealthy_when_nothing_answers() -> None:
    code, out = healthcheck("tiny_en", port=free_port(), TFSERVING_REQUIRE_GPU="0")
    assert code == 1 and "nothing answers" in out, out


def test_the_gpu_check_wants_a_gpu_device_held_by_tf_serving(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    server = ["/usr/bin/tensorflow_model_server", "--port=8500", "--rest_api_port=8501"]
    # What TF Serving holds after a failed CUDA set-up: the control nodes, no GPU.
    fake_process(proc, 17, server, {0: "/dev/null", 3: "/dev/nvidiactl", 4: "/dev/nvidia-uvm"})
    # Another process with a GPU open does not count (argv[0] is what is checked).
    fake_process(proc, 40, ["bash", "/config/healthcheck.sh"], {5: "/dev/nvidia0"})
    code, out = healthcheck(TFSERVING_REQUIRE_GPU="1", PROC_ROOT=str(proc))
    assert code == 1 and "NO GPU" in out and "pid 17" in out, out

    (proc / "17" / "fd" / "9").symlink_to("/dev/nvidia0")  # TensorFlow's GPU device is up
    code, out = healthcheck(TFSERVING_REQUIRE_GPU="1", PROC_ROOT=str(proc))
    assert code == 0 and "GPU in use" in out and "/dev/nvidia0" in out, out

    # The CPU override turns the check off.
    code, out = healthcheck(TFSERVING_REQUIRE_GPU="0", PROC_ROOT=str(tmp_path / "empty"))
    assert code == 0, out


def test_the_gpu_check_on_this_machine_finds_no_tf_serving() -> None:
    """The real /proc: no tensorflow_model_server runs here, and the check says so."""
    code, out = healthcheck(TFSERVING_REQUIRE_GPU="1")
    assert code == 1 and "no tensorflow_model_server process" in out, out
