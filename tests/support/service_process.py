"""caption-service or textgen-service in a child process, as a container runs it.

Used by the tests and bench/remote_rss.py to see what a service process really holds:
its memory (VmRSS, VmHWM from /proc/<pid>/status), the files it maps (/proc/<pid>/maps:
a TensorFlow runtime shows as libtensorflow*.so and _pywrap_tensorflow*.so), the
modules it imported (`python -X importtime` lists every import on stderr) and how
long it took from process start to its first `/readyz` 200.

The child runs `python -c "from <service>.main import run; run()"` (what the console
script does) in a working directory of its own, so a developer's `.env` is not read.
`preload` names modules imported before the service: the "before" of the benchmark
preloads `tensorflow`, as every service did when its protobuf classes came from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Service:
    name: str  # the console script: caption-service, textgen-service
    module: str  # the package whose main.run() the console script calls
    env_prefix: str


SERVICES = {
    "caption-service": Service("caption-service", "caption_service", "CAPTION_"),
    "textgen-service": Service("textgen-service", "textgen_service", "TEXTGEN_"),
    "gateway": Service("gateway", "gateway_service", "GATEWAY_"),
}


def grpc_backend_env(
    service: str, grpc_port: int, repository: Path, **extra: str
) -> dict[str, str]:
    """The settings of a service calling the model server at 127.0.0.1:grpc_port over gRPC."""
    prefix = SERVICES[service].env_prefix
    env = {
        "MODEL_BACKEND": "grpc",
        "MODEL_SERVER_HOST": "127.0.0.1",
        "MODEL_SERVER_GRPC_PORT": str(grpc_port),
        "MODEL_REPOSITORY": str(Path(repository).resolve()),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    return {prefix + key: value for key, value in env.items()}


def tensorflow_mappings(pid: int) -> list[str]:
    """The files of a TensorFlow runtime that process `pid` maps (empty: none loaded)."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            name = parts[5].rsplit("/", 1)[-1]
            if "tensorflow" in name or "/tensorflow/" in parts[5]:
                found.add(parts[5])
    return sorted(found)


def memory(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of process `pid`, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # the kernel writes kB
    return values


class ServiceProcess(AbstractContextManager["ServiceProcess"]):
    """One service process on a free loopback port; `start()` waits for /readyz 200."""

    def __init__(
        self,
        service: str,
        env: Mapping[str, str],
        *,
        preload: Sequence[str] = (),
        importtime: bool = False,
        workdir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.service = SERVICES[service]
        self.python = python  # another virtualenv's, e.g. one built as an image is
        self.port = free_port()
        self.env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            **env,
            self.service.env_prefix + "HOST": "127.0.0.1",
            self.service.env_prefix + "PORT": str(self.port),
        }
        self.preload, self.importtime = tuple(preload), importtime
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="service-"))
        self.log_path = self.workdir / f"{service}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        code = "".join(f"import {m}; " for m in self.preload)
        code += f"from {self.service.module}.main import run; run()"
        return [self.python, *(["-X", "importtime"] if self.importtime else []), "-c", code]

    def start(self, *, give_up_s: float = 600.0) -> ServiceProcess:
        with self.log_path.open("wb") as log:
            started = time.monotonic()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
            )
        self.startup_s = self._wait_ready(started, give_up_s)
        return self

    def _wait_ready(self, started: float, give_up_s: float) -> float:
        """Seconds from the process start to the first /readyz 200 (polled every 10 ms)."""
        assert self.process is not None
        with httpx.Client(timeout=2.0) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.service.name} exited with {self.process.returncode}:\n"
                        + self.log_text()[-4000:]
                    )
                try:
                    if http.get(self.url + "/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() - started > give_up_s:  # a bound for a hang, not a speed
                    raise RuntimeError(f"{self.service.name} not ready:\n{self.log_text()[-4000:]}")
                time.sleep(0.01)

    def memory(self) -> dict[str, int]:
        return memory(self.pid)

    def tensorflow_mappings(self) -> list[str]:
        return tensorflow_mappings(self.pid)

    def imported_modules(self) -> set[str]:
        """Every module the process imported so far (needs importtime=True)."""
        assert self.importtime, "start the service with importtime=True"
        modules = set()
        for line in self.log_text().splitlines():
            if line.startswith("import time:") and line.count("|") == 2:
                name = line.rsplit("|", 1)[1].strip()
                if name != "package":  # the header line
                    modules.add(name)
        return modules

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> ServiceProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
