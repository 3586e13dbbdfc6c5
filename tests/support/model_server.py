"""`talkative model-server` in a child process, with TF Serving's flags, for the tests.

The tests talk to it only over its wire protocols (official tensorflow-serving-api stubs
and plain REST), like they would to tensorflow_model_server. A test can stop and restart
it on the same ports (a model server that goes away) and freeze it with SIGSTOP (a model
server that hangs: the kernel still accepts connections, nothing answers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import grpc

from tests.support.servers import free_ports, stop_process

# The versions of each model a config lists (None: TF Serving's default, the newest)...
Versions = Mapping[str, Sequence[int] | None]
# ...and the version labels of each model: label -> version.
Labels = Mapping[str, Mapping[str, int]]
ROOT = Path(__file__).resolve().parents[2]


def config_text(repository: Path, versions: Versions, labels: Labels | None = None) -> str:
    """A text-format ModelServerConfig; versions None = TF Serving's default policy (latest)."""
    lines = ["model_config_list {"]
    for name, listed in versions.items():
        lines += [
            "  config {",
            f'    name: "{name}"',
            f'    base_path: "{(Path(repository) / name).resolve()}"',
            '    model_platform: "tensorflow"',
        ]
        if listed is not None:
            specific = " ".join(f"versions: {v}" for v in listed)
            lines.append(f"    model_version_policy {{ specific {{ {specific} }} }}")
        for label, version in (labels or {}).get(name, {}).items():
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_config(
    path: Path, repository: Path, versions: Versions, labels: Labels | None = None
) -> Path:
    """Write the config atomically, so a poll never reads half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(config_text(repository, versions, labels), encoding="utf-8")
    os.replace(tmp, path)
    return path


def serve(
    workdir: Path,
    repository: Path,
    versions: Versions,
    labels: Labels | None = None,
    **options: Any,
) -> ModelServerProcess:
    """A (not yet started) server of the listed `versions` of the repository's models (None:
    the newest), its config in WORKDIR/models.config."""
    config = write_config(Path(workdir) / "models.config", repository, versions, labels)
    return ModelServerProcess(config, **options)


def serve_repository(
    repository: Path, workdir: Path, labels: Labels | None = None, **options: Any
) -> ModelServerProcess:
    """A (not yet started) server for every model of a repository, newest version each."""
    models = sorted(p.name for p in Path(repository).iterdir() if p.is_dir())
    return serve(workdir, repository, dict.fromkeys(models), labels, **options)


class ModelServerProcess(AbstractContextManager["ModelServerProcess"]):
    """`python -m model_server` with TF Serving's flags on free loopback ports."""

    def __init__(
        self,
        config_file: Path,
        *,
        poll_s: float = 0.5,
        extra_flags: Sequence[str] = (),
        allow_unavailable_labels: bool = True,
        rest: bool = True,
    ) -> None:
        self.config_file = Path(config_file)
        self.poll_s = poll_s
        self.extra_flags = list(extra_flags)
        self.allow_unavailable_labels = allow_unavailable_labels
        self.grpc_port, self.rest_port = free_ports(2)
        self.rest_port = self.rest_port if rest else 0
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the child's life
            prefix="model-server-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "model_server",
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            "--host=127.0.0.1",
            f"--model_config_file={self.config_file}",
            f"--model_config_file_poll_wait_seconds={self.poll_s}",
            f"--file_system_poll_wait_seconds={self.poll_s}",
            f"--allow_version_labels_for_unavailable_models={str(self.allow_unavailable_labels).lower()}",
            *self.extra_flags,
        ]

    def start(self, *, wait: bool = True) -> ModelServerProcess:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self, give_up_s: float = 600.0) -> None:
        """Until the gRPC port answers (TF Serving opens it only once every model loaded)."""
        assert self.process is not None
        deadline = time.monotonic() + give_up_s  # a bound for a hung load, not a speed check
        from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc

        with grpc.insecure_channel(self.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"model server exited with {self.process.returncode}:\n{self.log_text()}"
                    )
                try:
                    stub.GetModelStatus(
                        get_model_status_pb2.GetModelStatusRequest(
                            model_spec=model_pb2.ModelSpec(name="__probe__")
                        ),
                        timeout=5,
                    )
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.NOT_FOUND:  # serving: it answered
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"model server not serving after {give_up_s:g} s:\n{self.log_text()}"
                    )
                time.sleep(0.1)

    def run_to_exit(self) -> tuple[int, str]:
        """Start a server expected to refuse to start; its exit code and its log."""
        self.start(wait=False)
        try:
            return self.exit_code(), self.log_text()
        finally:
            self.stop()

    def exit_code(self, timeout: float = 120.0) -> int:
        """Wait for a server expected to exit by itself (e.g. a bad config at start-up)."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen server cannot stop
        stop_process(self.process)
        self.process = None

    def hold(self) -> None:
        """Freeze the server: connections are accepted by the kernel, nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def release(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def log_text(self) -> str:
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ModelServerProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# A fixture that starts a model server on a repository (tests/serving/conftest.py).
StartModelServer = Callable[..., ModelServerProcess]


def wait_until(predicate: Any, what: str, *, timeout: float = 120.0, seen: Any = None) -> None:
    """Poll predicate() until true; on giving up, fail with what was last seen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = seen() if callable(seen) else seen
            raise AssertionError(f"gave up waiting for {what}; last seen: {detail}")
        time.sleep(0.05)
