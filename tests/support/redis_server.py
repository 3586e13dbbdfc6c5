"""A real Redis for the tests (a plugin of tests/conftest.py): Debian's `redis-server` on
a free loopback port, once per session, nothing written to disk.

The gateway's shared story store and the bot's lease run against it. Tests share the one
server and keep apart by key names (a prefix, a lease name) of their own.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port, stop_process

GIVE_UP_S = 30.0  # a bound for a server that never answers, not a speed


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        """A synchronous redis-py client, for looking at what the code under test stored."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def unique_prefix(name: str) -> str:
    """Key names no other test uses."""
    return f"test:{name}:{uuid.uuid4().hex[:8]}:"


@contextmanager
def running_redis(workdir: Path) -> Iterator[RedisServer]:
    """redis-server on a free port, answering PING; stopped (SIGTERM) when the block ends."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make system-deps` (Debian: redis-server)")
    port = free_port()
    log_path = workdir / f"redis-{port}.log"
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",  # no RDB snapshots
        "--appendonly", "no",  # no AOF
        "--dir", str(workdir),
        "--daemonize", "no",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = RedisServer(port, process, log_path)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    started, seen = time.monotonic(), "nothing yet"
    try:
        while True:  # waits on a condition: PING answered
            if process.poll() is not None:
                pytest.fail(
                    f"redis-server exited with {process.returncode} before answering PING:\n"
                    + server.log_text()[-4000:]
                )
            try:
                if client.ping():
                    break
            except redis.RedisError as exc:
                seen = f"{exc.__class__.__name__}: {exc}"
            if time.monotonic() - started > GIVE_UP_S:
                pytest.fail(
                    f"redis-server on port {port} did not answer PING in {GIVE_UP_S:g} s; "
                    f"last seen: {seen}; its log:\n{server.log_text()[-4000:]}"
                )
            time.sleep(0.02)
        client.close()
        yield server
    finally:
        stop_process(process, timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
