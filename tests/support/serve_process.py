"""`talkative serve` as a user runs it, in a child process for tests: free ports, the
services' stderr in a log file, the pid of each service read from that log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_ports

ROOT = Path(__file__).resolve().parents[2]
# -P: the child imports the installed packages, never a folder of the current directory.
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("gateway-service", "caption-service", ".")),
    TF_CPP_MIN_LOG_LEVEL="2",
    TF_NUM_INTRAOP_THREADS="1",
    TF_NUM_INTEROP_THREADS="1",
)


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    ports: list[int]  # gateway, caption-service, textgen-service
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def wait_ready(self) -> str:
        """Block until the stack says it is ready; the line that said so."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "Talkative is ready" in line:
                return line
        pytest.fail(f"talkative serve exited before being ready:\n{self.log.read_text()}")

    def pids(self) -> dict[str, int]:
        """The latest pid of each service (a restarted one has a new pid)."""
        text = self.log.read_text()
        found = re.findall(r"  (\S+) (?:ready at \S+|restarted) \(pid (\d+)\)", text)
        return {name: int(pid) for name, pid in found}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_serve(
    repository: Path, log: Path, env: Mapping[str, str] | None = None, *extra: str
) -> ServeProcess:
    """Start `talkative serve` on free ports; stdout is piped (for the ready line)."""
    ports = free_ports(3)
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "talkative.cli", "serve", "--models-dir",
             str(repository), "--port", str(ports[0]), "--caption-port", str(ports[1]),
             "--textgen-port", str(ports[2]), *extra],
            stdout=subprocess.PIPE, stderr=errors, text=True, env=dict(env or ENV), cwd=ROOT,
        )  # fmt: skip
    return ServeProcess(process, ports, log)
