"""`talkative serve`: run caption-service, textgen-service and the gateway on this machine.

The three services start as child processes (see docs/gateway.md). With
`--backend inprocess` (the default) each service loads its models itself; with
`--backend grpc` or `rest` the stack takes the production topology: `talkative
model-server` (TF Serving's protocol and flags) serves serving/models.config, and the
two model services reach it by version label, as they reach TF Serving under compose.
The command waits until every child is ready, prints the URL, and on Ctrl-C or
SIGTERM stops them all (SIGTERM, then SIGKILL for one that does not finish within
--stop-timeout seconds). A child that dies while the stack runs is started again,
after 0.5 s, then twice as long after each quick exit in a row (at most 30 s), as
compose's `restart: unless-stopped` would; the others keep serving meanwhile (the
gateway answers 503 with Retry-After for what needs the missing one). A child that
exits --max-restarts times in a row within a minute of its start, or one that cannot
start the first time, stops the stack and the command fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

from talkative.commands.options import add_models_dir
from talkative.stack import ModelServer, Stack

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "serving"


STABLE_S = 60.0  # a child that ran this long before exiting starts a new count of quick exits
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    name: str
    url: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    ready_path: str = "/readyz"
    process: subprocess.Popen[bytes] = field(init=False)
    started: float = field(init=False)
    quick_exits: int = 0
    restart_at: float | None = None  # set while a dead child waits for its restart

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.process, self.started, self.restart_at = self.spawn(), time.monotonic(), None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="gateway interface (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="gateway port (default: %(default)s)")
    p.add_argument(
        "--caption-port", type=int, default=8001, help="caption-service port (default: %(default)s)"
    )
    p.add_argument(
        "--textgen-port", type=int, default=8002, help="textgen-service port (default: %(default)s)"
    )
    add_models_dir(p)
    p.add_argument(
        "--text-models",
        default=None,
        metavar="M1,M2",
        help="comma-separated text models to serve (default: every text model in DIR)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="give up if the stack is not ready after S seconds (default: %(default)s)",
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds each service gets to stop before it is killed (default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        default="inprocess",
        choices=["inprocess", "grpc", "rest"],
        help="inprocess: each service loads its models; grpc or rest: run `talkative "
        "model-server` on --model-config and reach it over TF Serving's gRPC or REST API "
        "by --label, the production topology (default: %(default)s)",
    )
    p.add_argument(
        "--model-config",
        type=Path,
        default=SERVING / "models.config",
        metavar="FILE",
        help="models.config of the model server; its /models base paths are read under "
        "--models-dir, and `talkative models promote` edits the same file "
        "(default: serving/models.config)",
    )
    p.add_argument(
        "--label",
        default="stable",
        help="version label the services follow with --backend grpc or rest (default: %(default)s)",
    )
    p.add_argument(
        "--model-server-port",
        type=int,
        default=8500,
        help="gRPC port of the model server (default: %(default)s)",
    )
    p.add_argument(
        "--model-server-rest-port",
        type=int,
        default=8501,
        help="REST port of the model server (default: %(default)s)",
    )
    p.add_argument(
        "--config-poll",
        type=float,
        default=5.0,
        metavar="S",
        help="the model server re-reads --model-config, and the services re-resolve "
        "--label, every S seconds (default: %(default)s)",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        metavar="N",
        help="a service that dies is restarted; after N quick exits in a row (each within a "
        "minute of its start) the stack is stopped instead (default: %(default)s)",
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines of the services, for people or machines (default: %(default)s)",
    )


class Stop(Exception):
    """A signal asked the stack to stop."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


PR_SET_PDEATHSIG = 1  # prctl option, from linux/prctl.h


def _exit_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when this command dies, even by SIGKILL, so a
    killed `talkative serve` leaves no service behind holding its port (Linux only)."""

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above ran
            os._exit(1)

    return arm


def _spawn(name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A new session: Ctrl-C reaches only this command, which then stops each child in order.
    # -P: the child imports the installed packages, never a folder of the current directory.
    return subprocess.Popen(
        [sys.executable, "-P", "-c", f"from {module} import run; run()"],
        env=env,
        start_new_session=True,
        preexec_fn=_exit_with_parent(os.getpid()),  # the parent is single-threaded here
    )


def _spawn_model_server(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """TF Serving's command line from docker-compose.yml, with this machine's paths."""
    flags = [
        f"--port={args.model_server_port}",
        f"--rest_api_port={args.model_server_rest_port}",
        "--host=127.0.0.1",
        f"--model_config_file={args.model_config.resolve()}",
        f"--model_config_file_poll_wait_seconds={args.config_poll:g}",
        f"--model_base_path_rewrite=/models={args.models_dir.resolve()}",
        "--allow_version_labels_for_unavailable_models=true",
        "--enable_batching=true",
        f"--batching_parameters_file={SERVING / 'batching_parameters.txt'}",
        # each text model's batching_params.pbtxt; the captioner, without one, unbatched
        "--enable_per_model_batching_parameters=true",
        f"--monitoring_config_file={SERVING / 'monitoring.config'}",
    ]
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "model_server", *flags],
        env=env,
        start_new_session=True,
        preexec_fn=_exit_with_parent(os.getpid()),
    )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(children: list[Child], deadline: float) -> None:
    pending = list(children)
    while pending:
        for child in list(pending):
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with status {child.process.returncode}")
            if _ready(child.url + child.ready_path):
                print(
                    f"  {child.name} ready at {child.url} (pid {child.process.pid})",
                    file=sys.stderr,
                    flush=True,
                )
                pending.remove(child)
        if pending and time.monotonic() > deadline:
            names = ", ".join(c.name for c in pending)
            raise RuntimeError(f"not ready in time: {names}")
        time.sleep(0.5)


def _supervise(child: Child, max_restarts: int) -> None:
    """Restart a child that died, with a growing pause; give up after too many quick exits."""
    now = time.monotonic()
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.start()
            print(
                f"  {child.name} restarted (pid {child.process.pid})", file=sys.stderr, flush=True
            )
        return
    code = child.process.poll()
    if code is None:
        return
    child.quick_exits = child.quick_exits + 1 if now - child.started < STABLE_S else 1
    if child.quick_exits > max_restarts:
        raise RuntimeError(
            f"{child.name} exited with status {code}, {child.quick_exits} times in a row"
        )
    pause = min(MAX_BACKOFF_S, 0.5 * 2 ** (child.quick_exits - 1))
    child.restart_at = now + pause
    print(
        f"  {child.name} exited with status {code}; restarting it in {pause:g} s",
        file=sys.stderr,
        flush=True,
    )


def _stop(children: list[Child], timeout_s: float) -> None:
    for child in reversed(children):  # the gateway first: it stops taking requests
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {child.name} did not stop; killing it", file=sys.stderr)
            child.process.kill()
            child.process.wait()


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    # The same builder as `tell`, `caption` and `generate`, as child processes this time.
    stack = Stack(
        args.models_dir,
        text_models=args.text_models.split(",") if args.text_models else None,
        log_format=args.log_format,
        model_server=None
        if args.backend == "inprocess"
        else ModelServer(
            args.backend,
            grpc_port=args.model_server_port,
            rest_port=args.model_server_rest_port,
            label=args.label,
            poll_s=args.config_poll,
        ),
    )
    specs = stack.processes(
        host=args.host,
        port=args.port,
        caption_port=args.caption_port,
        textgen_port=args.textgen_port,
    )
    gateway_url = specs[-1].url
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    code = 0
    try:
        print("Starting the Talkative stack (models load first; this can take a minute)…")
        if args.backend != "inprocess":
            # The model server first: the services check their models against it at start-up.
            server = Child(
                "model-server",
                f"http://127.0.0.1:{args.model_server_rest_port}",
                lambda: _spawn_model_server(args, env),
                ready_path="/monitoring/prometheus/metrics",
            )
            children.append(server)
            _wait_ready([server], time.monotonic() + args.ready_timeout)
        for spec in specs:
            children.append(
                Child(spec.name, spec.url, partial(_spawn, spec.name, spec.module, env | spec.env))
            )
        _wait_ready(
            [c for c in children if c.name != "model-server"],
            time.monotonic() + args.ready_timeout,
        )
        print(f"\nTalkative is ready: open {gateway_url}/ in a browser (Ctrl-C stops it).")
        sys.stdout.flush()
        while True:
            for child in children:
                _supervise(child, args.max_restarts)
            time.sleep(0.5)
    except Stop as why:
        print(f"\n{why}: stopping the stack…", file=sys.stderr)
    except RuntimeError as exc:
        print(f"error: {exc}; stopping the stack", file=sys.stderr)
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not orphan children
        _stop(children, args.stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped.", file=sys.stderr)
    return code
