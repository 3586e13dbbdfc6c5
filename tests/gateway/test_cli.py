"""`talkative tell` and `talkative serve` as a user runs them: real processes, real models."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.gateway.conftest import ROOT
from tests.support.cli import run_talkative
from tests.support.serve_process import ENV, start_serve
from tests.support.servers import free_ports


def talkative(*args: str) -> subprocess.CompletedProcess[str]:
    return run_talkative(*args, env=ENV)


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("tell", ("--model", "--style", "--max-new-tokens", "--temperature", "--seed", "--card",
                  "--models-dir")),
        ("serve", ("--host", "--port", "--caption-port", "--textgen-port", "--models-dir",
                   "--text-models", "--ready-timeout", "--stop-timeout", "--log-format",
                   "--backend", "--model-config", "--label", "--model-server-port",
                   "--model-server-rest-port", "--config-poll", "--max-restarts")),
    ],
)  # fmt: skip
def test_help_documents_every_option(command: str, options: tuple[str, ...]) -> None:
    out = talkative(command, "--help")
    assert out.returncode == 0
    for option in options:
        assert option in out.stdout


def test_tell_refuses_what_is_not_a_photo(tmp_path: Path, gateway_repository: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a photo")
    out = talkative("tell", str(fake), "--models-dir", str(gateway_repository))
    assert out.returncode == 2 and "not a JPEG, PNG, WebP or GIF" in out.stderr
    missing = talkative("tell", str(tmp_path / "nope.jpg"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    knob = talkative("tell", str(fake), "--temperature", "9")
    assert knob.returncode == 2 and "--temperature" in knob.stderr


def test_tell(tmp_path: Path, gateway_repository: Path, jpeg: bytes) -> None:
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg)
    card = tmp_path / "card.png"
    args = ("tell", str(photo), "--models-dir", str(gateway_repository), "--model", "tiny_en",
            "--seed", "9", "--max-new-tokens", "60", "--style", "tale",
            "--card", str(card))  # fmt: skip
    out = talkative(*args)
    assert out.returncode == 0, out.stderr
    first, blank, story = out.stdout.split("\n", 2)
    assert first.startswith("Caption: ") and len(first) > len("Caption: ") and blank == ""
    # The tiny model never saw a capital O: the seed is fitted to its alphabet.
    assert story.startswith("once upon a time there was")
    assert "seed 9" in out.stderr
    with Image.open(io.BytesIO(card.read_bytes())) as img:
        assert img.size == (1080, 1350)
    assert talkative(*args).stdout == out.stdout  # same seed, same story


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def stopped_on_ctrl_c(process: subprocess.Popen[str], ports: Sequence[int]) -> Iterator[None]:
    """The body runs against a started `talkative serve`; then Ctrl-C must stop it with status
    0, and no port of its stack may still listen. If the body fails, the process is killed."""
    try:
        yield
        process.send_signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not any(_listening(p) for p in ports)


def test_serve_starts_the_stack_and_stops_it_on_ctrl_c(
    gateway_repository: Path, png: bytes
) -> None:
    ports = free_ports(3)
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "talkative.cli", "serve", "--models-dir",
         str(gateway_repository), "--port", str(ports[0]), "--caption-port", str(ports[1]),
         "--textgen-port", str(ports[2])],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    with stopped_on_ctrl_c(process, ports):
        for line in process.stdout:
            if "Talkative is ready" in line:
                break
        else:
            pytest.fail(f"talkative serve exited with {process.wait()} before being ready")
        url = f"http://127.0.0.1:{ports[0]}"
        assert url in line
        with httpx.Client(base_url=url, timeout=120) as client:
            ready = client.get("/readyz")
            assert ready.json()["status"] == "ready"
            assert "server" not in ready.headers  # the server software is not announced
            response = client.post(
                "/v1/stories",
                files={"image": ("p.png", png, "image/png")},
                data={"model": "tiny_fr", "max_new_tokens": "40"},
            )
            assert response.status_code == 200, response.text
            assert client.get(response.json()["card_url"]).status_code == 200


def test_serve_stops_everything_when_a_service_cannot_start(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    ports = free_ports(3)
    out = talkative("serve", "--models-dir", str(empty), "--port", str(ports[0]),
                    "--caption-port", str(ports[1]), "--textgen-port", str(ports[2]),
                    "--stop-timeout", "30")  # fmt: skip
    assert out.returncode == 1
    assert "exited with status" in out.stderr and "stopping the stack" in out.stderr
    assert not any(_listening(p) for p in ports)


@dataclass(frozen=True)
class Answer:
    """One story request as the client saw it; status 0: no HTTP answer (transport error)."""

    sent: float  # time.monotonic() when sent
    answered: float  # ... and when its answer (or the transport error) came
    status: int
    retry_after: str | None = None
    detail: str = ""

    @property
    def took(self) -> float:
        return self.answered - self.sent

    def __repr__(self) -> str:
        extra = f" Retry-After {self.retry_after}" if self.retry_after is not None else ""
        return f"<{self.status} in {self.took:.2f} s{extra} {self.detail[:80]!r}>"


def post_story(client: httpx.Client, photo: bytes) -> Answer:
    sent = time.monotonic()
    try:
        response = client.post(
            "/v1/stories",
            files={"image": ("p.png", photo, "image/png")},
            data={"model": "tiny_en", "max_new_tokens": "20"},
        )
    except httpx.TransportError as exc:  # the gateway itself is the one restarting
        return Answer(sent, time.monotonic(), 0, detail=exc.__class__.__name__)
    detail = "" if response.status_code == 200 else response.text
    return Answer(
        sent, time.monotonic(), response.status_code, response.headers.get("retry-after"), detail
    )


def first_story(client: httpx.Client, photo: bytes, log: Path) -> None:
    """A story before the fault: a loaded machine may shed the first few."""
    first = [post_story(client, photo)]
    while first[-1].status != 200 and len(first) < 60:
        time.sleep(0.5)
        first.append(post_story(client, photo))
    assert first[-1].status == 200, f"no story before the fault: {first}\n{log.read_text()}"


def bad_refusals(answers: Sequence[Answer]) -> list[Answer]:
    """503s without a usable Retry-After: a client could not know when to come back."""
    return [
        a
        for a in answers
        if a.status == 503 and not (a.retry_after is not None and a.retry_after.isdigit()
                                    and int(a.retry_after) >= 1)
    ]  # fmt: skip


LOAD_CLIENTS = 3  # closed-loop clients that keep sending stories while a service is down
LOAD_PACE_S = 0.2  # each pauses this long after an answer: a steady load, not a flood of 503s


@pytest.mark.parametrize("victim", ["textgen-service", "caption-service", "gateway"])
def test_serve_restarts_a_service_killed_with_sigkill(
    victim: str,
    gateway_repository: Path,
    png: bytes,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """kill -9 of one service under load: `talkative serve` starts it again once, after the
    first backoff step (0.5 s), the other services keep running (their pids do not change),
    a refusal meanwhile is a 503 with Retry-After, never a 500, and stories come back.

    How long that takes is a figure, not an assertion (the issue's target is 30 s; a busy
    machine is slower): bench/recovery.py measures it against the target."""
    stack = start_serve(gateway_repository, tmp_path / "serve.log")
    process, ports, log, url, pids = stack.process, stack.ports, stack.log, stack.url, stack.pids
    with stopped_on_ctrl_c(process, ports):
        stack.wait_ready()
        before = pids()
        assert set(before) == {"caption-service", "textgen-service", "gateway"}, log.read_text()
        stop = threading.Event()
        load: list[Answer] = []

        def background() -> None:  # steady traffic while the service dies and returns
            with httpx.Client(base_url=url, timeout=120) as own:
                while not stop.is_set():
                    load.append(post_story(own, png))
                    stop.wait(LOAD_PACE_S)

        workers = [threading.Thread(target=background) for _ in range(LOAD_CLIENTS)]
        with httpx.Client(base_url=url, timeout=120) as client:
            first_story(client, png, log)
            for worker in workers:
                worker.start()
            killed = time.monotonic()
            os.kill(before[victim], signal.SIGKILL)
            seen: list[Answer] = []
            try:
                for _ in range(1500):  # bounded; each turn waits on a real request or a pause
                    seen.append(post_story(client, png))
                    if seen[-1].status == 200 and pids().get(victim) != before[victim]:
                        break
                    time.sleep(0.2)
                else:
                    pytest.fail(f"no story after restart; answers {seen[-10:]}\n{log.read_text()}")
            finally:
                stop.set()
                for worker in workers:
                    worker.join()
        answers = [a for a in seen + load if a.sent >= killed]
        back = min(a.answered for a in answers if a.status == 200)
        outage = [a for a in answers if a.answered < back]
        record_property(
            "figure",
            f"{victim}: stories again {back - killed:.1f} s after kill -9 (target 30 s) under "
            f"{LOAD_CLIENTS + 1} clients; meanwhile {sum(a.status == 503 for a in outage)} "
            f"503s, {sum(a.status == 0 for a in outage)} transport errors",
        )
        text = log.read_text()
        # Every answer is a story or a clean refusal; a transport error only while the
        # gateway itself is down (the connection it held, or no one listening).
        allowed = {200, 503} | ({0} if victim == "gateway" else set())
        assert {a.status for a in seen + load} <= allowed, [a for a in seen + load
                                                            if a.status not in allowed]  # fmt: skip
        assert not bad_refusals(seen + load), bad_refusals(seen + load)
        # One death, one restart, after the first backoff step; no other service died.
        assert text.count(" exited with status") == 1, text
        assert text.count(f"  {victim} exited with status -9; restarting it in 0.5 s\n") == 1, text
        assert text.count(" restarted (pid ") == 1, text
        assert text.count(f"  {victim} restarted (pid {pids()[victim]})") == 1, text
        after = pids()
        assert {n: p for n, p in after.items() if n != victim} == {
            n: p for n, p in before.items() if n != victim
        }


# How long textgen-service stays frozen: the 20 s, longer than the gateway's
# watchdog needs to trip with its production settings (a probe every 1 s, 3 s each, 3 in a
# row: about 12 s), so refusals are seen while the process is still stopped.
FREEZE_S = 20.0
FREEZE_CLIENTS = 3  # clients that keep sending stories during the freeze
FREEZE_PACE_S = 0.2  # each pauses this long after an answer: a steady load, not a flood


def test_a_frozen_textgen_gives_503s_not_held_requests(
    gateway_repository: Path,
    png: bytes,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """SIGSTOP textgen-service for FREEZE_S: it still accepts connections but never answers.
    The gateway's read timeout is set far beyond the test's patience (600 s), so a 503 can
    only come from its watchdog (production settings: GATEWAY_PROBE_* are not set) noticing
    the frozen process. Once it has tripped, stories are refused with 503 + Retry-After
    while textgen-service is still stopped (each answer arrives before SIGCONT is sent);
    the requests it held meanwhile are answered 503 too. After SIGCONT, stories succeed
    again without a restart."""
    env = ENV | {"GATEWAY_TEXTGEN_TIMEOUT_S": "600", "GATEWAY_RETRIES": "0"}
    assert not any(k.startswith("GATEWAY_PROBE_") for k in env), "the watchdog's defaults"
    stack = start_serve(gateway_repository, tmp_path / "serve.log", env)
    process, log, url = stack.process, stack.log, stack.url
    textgen: int | None = None
    try:
        stack.wait_ready()
        textgen = stack.pids()["textgen-service"]
        with httpx.Client(base_url=url, timeout=300) as client:
            first_story(client, png, log)
            offset = len(log.read_text())
            answers: list[Answer] = []
            seen = threading.Condition()
            enough = threading.Event()  # the freeze is over: send no more

            def freeze_load() -> None:
                with httpx.Client(base_url=url, timeout=300) as own:
                    while not enough.is_set():
                        answer = post_story(own, png)
                        with seen:
                            answers.append(answer)
                            seen.notify_all()
                        enough.wait(FREEZE_PACE_S)

            def tripped() -> bool:  # a refusal came, or something no refusal explains
                return any(a.status != 200 for a in answers)

            workers = [threading.Thread(target=freeze_load) for _ in range(FREEZE_CLIENTS)]
            stopped = time.monotonic()
            os.kill(textgen, signal.SIGSTOP)
            try:
                for worker in workers:
                    worker.start()
                with seen:
                    # The freeze lasts FREEZE_S, and in any case until an answer has come:
                    # a watchdog that never trips holds every request for the client's 300 s.
                    while not (tripped() and time.monotonic() - stopped >= FREEZE_S):
                        left = FREEZE_S - (time.monotonic() - stopped)
                        seen.wait(timeout=left if tripped() else None)
                # Every request sent during the freeze is answered before SIGCONT is sent:
                # the clients stop sending, and their last requests come back (or time out).
                enough.set()
                for worker in workers:
                    worker.join()
            finally:
                resumed_at = time.monotonic()
                os.kill(textgen, signal.SIGCONT)
                textgen = None
                enough.set()
                for worker in workers:
                    if worker.is_alive():
                        worker.join()
            during = list(answers)
            # The watchdog's verdict, from the client's side: the first refusal.
            refusals = [a for a in during if a.status == 503]
            assert refusals, f"no 503 while textgen-service was frozen: {during}"
            trip = min(a.answered for a in refusals)
            held = [a for a in during if a.sent < trip]  # waiting when the watchdog tripped
            refused = [a for a in during if a.sent >= trip]
            longest = max((a.took for a in refused), default=float("nan"))
            record_property(
                "figure",
                f"frozen textgen-service ({FREEZE_S:g} s, {FREEZE_CLIENTS} clients): first "
                f"503 {trip - stopped:.1f} s after SIGSTOP; during the freeze {len(held)} "
                f"requests held until the trip, {len(refused)} refused after it; longest "
                f"answer after the trip {longest:.2f} s",
            )
            # Nothing but a clean refusal while textgen-service was frozen (a story could
            # only come from a request that textgen-service answered before SIGSTOP).
            assert {a.status for a in during} <= {200, 503}, during
            assert not any(a.status == 200 and a.sent >= stopped for a in during), during
            assert not bad_refusals(during), bad_refusals(during)
            # The ordering the issue asks for: after the trip, requests were answered while
            # textgen-service was still stopped, not held until it came back.
            assert refused, f"no request was sent after the watchdog tripped: {during}"
            assert all(a.status == 503 and a.answered < resumed_at for a in refused), refused
            assert all(a.answered < resumed_at for a in held), held
            last = refused[-1]
            assert "health checks" in last.detail, last
            assert client.get("/healthz").status_code == 200  # the gateway itself is fine
            after: list[Answer] = []
            for _ in range(600):  # bounded; a request or a short pause per turn
                after.append(post_story(client, png))
                if after[-1].status == 200:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"no story after SIGCONT; answers {after[-10:]}\n{log.read_text()}")
            assert {a.status for a in after} <= {200, 503}, after
            record_property(
                "figure",
                f"frozen textgen-service: a story again {after[-1].answered - resumed_at:.1f} s "
                "after SIGCONT",
            )
        text = log.read_text()[offset:]
        assert text.count("textgen-service missed 3 health checks") == 1, text
        assert "textgen-service answers again" in text, text
        assert "exited with status" not in text, text  # frozen, not restarted
        process.send_signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        if textgen is not None:
            os.kill(textgen, signal.SIGCONT)
        if process.poll() is None:
            process.kill()


def test_services_do_not_outlive_a_killed_serve(gateway_repository: Path, tmp_path: Path) -> None:
    """kill -9 of `talkative serve` itself: it cannot stop its children, so they stop on
    their own (the kernel's parent-death signal) and free their ports."""
    stack = start_serve(gateway_repository, tmp_path / "serve.log")
    try:
        stack.wait_ready()
        children = stack.pids()
        assert len(children) == 3, stack.log.read_text()
        stack.process.kill()
        stack.process.wait()
        alive = dict(children)
        for _ in range(1200):  # bounded; until every child has gone
            alive = {n: p for n, p in alive.items() if _running(p)}
            if not alive:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"services outlived talkative serve: {alive}")
        assert not any(_listening(p) for p in stack.ports)
    finally:
        for pid in stack.pids().values():
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited; init reaps it
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
