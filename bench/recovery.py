"""Recovery from kill -9: how long until stories succeed again after a service dies.

Starts the real stack with `talkative serve` (caption-service, textgen-service and the
gateway as processes, the committed default models in-process, on 127.0.0.1), keeps a
small steady load on it (--clients closed-loop clients, each pausing --pause seconds
after every answer, sending `POST /v1/stories` with the offline photos), and kills each
service in turn with SIGKILL. `talkative serve` starts the dead one again (first
backoff step: 0.5 s) and the gateway answers 503 with Retry-After meanwhile.

For each kill it measures the recovery time: from the kill to the first successful story
among the requests sent after it. Each service is killed --repeats times; its row gives
the median, the fastest and the slowest recovery, against the issue's target (stories
again within 30 s: met when the median is at most --target), with what the clients saw
during the outages: 503s (and whether each carried Retry-After), transport errors (only
expected while the gateway itself is down) and anything else.

A service is only killed once it has run for a minute since its last start, so every
restart is the first step of serve's backoff (a quick exit in a row doubles the pause).

Benchmarks tell the load: every process shares this machine's cores, so the header gives
the load average before the stack started and each kill line the 1-minute load average
before it and the CPU that other processes (not the bench, not the stack) used during
it, in cores. The figures are for this machine.

    python bench/recovery.py [--repeats 3] [--clients 2] [--services gateway,...]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402
from bench.stories import OtherLoad  # noqa: E402
from talkative.commands.serve import STABLE_S  # noqa: E402
from tests.support.serve_process import ENV, ServeProcess, start_serve  # noqa: E402

SERVICES = ("textgen-service", "caption-service", "gateway")
TARGET_S = 30.0


@dataclass(frozen=True)
class Answer:
    """One story request as a client saw it; status 0: a transport error."""

    sent: float
    answered: float
    status: int
    retry_after: str | None


@dataclass
class Kill:
    """One kill -9 and what followed it."""

    service: str
    at: float
    recovery_s: float | None = None  # None: no story within --give-up seconds
    answers: list[Answer] = field(default_factory=list)  # sent after the kill, until back
    pause: str = "?"  # serve's restart pause, from its log
    load_1m: float = 0.0
    other_cores: float | None = None

    def count(self, status: int) -> int:
        return sum(a.status == status for a in self.answers)

    @property
    def bare_503s(self) -> int:
        return sum(a.status == 503 and not (a.retry_after or "").isdigit() for a in self.answers)

    @property
    def others(self) -> int:
        return sum(a.status not in (0, 200, 503) for a in self.answers)


class Load:
    """Closed-loop clients sending stories until stopped; every answer is kept."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        from training.captioner import offline_photos

        self.url, self.args = url, args
        self.photos = [offline_photos.as_bytes(p, "JPEG") for p in offline_photos.PHOTOS]
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(args.clients)
        ]

    def _client(self, index: int) -> None:
        import httpx

        n = index
        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(
                        "/v1/stories",
                        files={"image": ("photo.jpg", self.photos[n % len(self.photos)],
                                         "image/jpeg")},
                        data={"model": self.args.model,
                              "max_new_tokens": str(self.args.max_new_tokens), "seed": str(n)},
                    )  # fmt: skip
                    status, after = response.status_code, response.headers.get("retry-after")
                except httpx.HTTPError:
                    status, after = 0, None
                with self.lock:
                    self.answers.append(Answer(sent, time.monotonic(), status, after))
                n += self.args.clients
                self.stop.wait(self.args.pause)

    def since(self, moment: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.sent >= moment]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def _wait_for_story(
    load: Load, since: float, give_up_s: float, poll_s: float = 0.1
) -> float | None:
    """When the first story sent after `since` was answered; None after `give_up_s`."""
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        done = [a.answered for a in load.since(since) if a.status == 200]
        if done:
            return min(done)
        time.sleep(poll_s)
    return None


def _kill(stack: ServeProcess, load: Load, service: str, args: argparse.Namespace) -> Kill:
    pid = stack.pids()[service]
    kill = Kill(service, 0.0, load_1m=os.getloadavg()[0])
    other = OtherLoad(stack.process.pid)
    other.start()
    before = stack.log.read_text()
    kill.at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    back = _wait_for_story(load, kill.at, args.give_up)
    kill.other_cores = other.stop()
    if back is not None:
        kill.recovery_s = back - kill.at
    kill.answers = [a for a in load.since(kill.at) if back is None or a.answered <= back]
    for line in stack.log.read_text()[len(before) :].splitlines():
        if line.startswith(f"  {service} exited with status") and "restarting it in" in line:
            kill.pause = line.rsplit("restarting it in ", 1)[1]
    return kill


def _summary(kills: list[Kill], target_s: float) -> str:
    times = [k.recovery_s for k in kills if k.recovery_s is not None]
    lost = len(kills) - len(times)
    if not times:
        return f"{'-':>8} {'-':>8} {'-':>8}  not met ({lost} kills never recovered)"
    median = statistics.median(times)
    verdict = "met" if median <= target_s and not lost else "not met"
    worse = sum(t > target_s for t in times) + lost
    note = f" ({worse} of {len(kills)} kills over {target_s:g} s)" if worse else ""
    return f"{median:>8.1f} {min(times):>8.1f} {max(times):>8.1f}  {verdict}{note}"


def _services(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERVICES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(SERVICES)}; not {unknown}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser(main, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    repository_option(parser, "model repository laid out as <name>/<version>/")
    parser.add_argument(
        "--model", default="char_lstm_en", help="text model of the stories (the only one served)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=40, help="story length asked for, in tokens"
    )
    parser.add_argument(
        "--services",
        type=_services,
        default=",".join(SERVICES),
        metavar="NAME,...",
        help="comma-separated services to kill, in this order, once per repeat",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="kills of each service; a row gives their median"
    )
    parser.add_argument(
        "--clients", type=int, default=2, help="closed-loop clients sending stories throughout"
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds each client waits after an answer before its next request (a steady, "
        "small load; it also bounds how finely the recovery is timed)",
    )
    parser.add_argument(
        "--target", type=float, default=TARGET_S, metavar="S", help="recovery target, seconds"
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=300.0,
        metavar="S",
        help="a kill after which no story succeeds within S seconds counts as never recovered",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Time until stories succeed again after kill -9 of each service of `talkative serve`,
    under a small steady load: median of --repeats kills per service, against the 30 s
    target, with the 503s and errors the clients saw meanwhile."""
    parser = _parser()
    args = parser.parse_args(argv)
    if min(args.repeats, args.clients, args.max_new_tokens) < 1:
        parser.error("--repeats, --clients and --max-new-tokens must be >= 1")
    if args.pause < 0 or args.target <= 0 or args.give_up <= 0:
        parser.error("--pause must be >= 0, --target and --give-up > 0")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="recovery-") as tmp:
        stack = start_serve(
            args.repository, Path(tmp) / "serve.log", ENV, "--text-models", args.model
        )
        try:
            stack.wait_ready()
            started = {name: time.monotonic() for name in stack.pids()}
            print(
                f"stack: talkative serve on {args.repository}, {args.model}, "
                f"{args.max_new_tokens} new tokens, {os.cpu_count()} CPU cores shared by the "
                "three services and the clients"
            )
            print(
                f"load: {args.clients} closed-loop clients, {args.pause:g} s pause after each "
                f"answer; {args.repeats} kill(s) of each service, each after it has run "
                f"{STABLE_S:g} s (first backoff step)"
            )
            print(
                "load average before the stack started (1/5/15 min): "
                + " / ".join(f"{v:.2f}" for v in load_before)
            )
            kills: dict[str, list[Kill]] = {name: [] for name in args.services}
            with Load(stack.url, args) as load:
                if _wait_for_story(load, time.monotonic(), args.give_up) is None:
                    raise SystemExit(f"no story before any kill:\n{stack.log.read_text()[-3000:]}")
                print(
                    f"{'service':<16} {'recovery s':>10} {'503s':>5} {'w/o RA':>6} "
                    f"{'transport':>9} {'other':>5} {'restart in':>10} {'load 1m':>7} "
                    f"{'other cores':>11}"
                )
                for _ in range(args.repeats):
                    for service in args.services:
                        wait = started[service] + STABLE_S + 1 - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)  # so serve's backoff starts again at 0.5 s
                        # steady state first: a story sent now succeeds
                        if _wait_for_story(load, time.monotonic(), args.give_up) is None:
                            raise SystemExit(f"no story before killing {service}; stopping")
                        kill = _kill(stack, load, service, args)
                        kills[service].append(kill)
                        started[service] = time.monotonic()  # no earlier than its restart
                        rec = "never" if kill.recovery_s is None else f"{kill.recovery_s:.1f}"
                        other = kill.other_cores
                        print(
                            f"{service:<16} {rec:>10} {kill.count(503):>5} {kill.bare_503s:>6} "
                            f"{kill.count(0):>9} {kill.others:>5} {kill.pause:>10} "
                            f"{kill.load_1m:>7.2f} "
                            f"{'n/a' if other is None else f'{other:.2f}':>11}",
                            flush=True,
                        )
                        if kill.recovery_s is None:
                            raise SystemExit(f"{service} never came back; stopping the bench")
            print(
                f"\nstories again after kill -9, seconds over {args.repeats} kills "
                f"(target: median <= {args.target:g} s)"
            )
            print(f"{'service':<16} {'median':>8} {'fastest':>8} {'slowest':>8}  target")
            for service, done in kills.items():
                print(f"{service:<16} {_summary(done, args.target)}")
        finally:
            if stack.process.poll() is None:
                stack.process.send_signal(signal.SIGINT)
                try:
                    stack.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    stack.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
