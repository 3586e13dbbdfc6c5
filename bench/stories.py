"""End-to-end story latency, throughput and load shedding through the local stack.

Starts the real stack with `talkative serve` (caption-service, textgen-service and
the gateway as processes, models in-process, on 127.0.0.1), then sends
`POST /v1/stories` with the offline photos from 1, 8 and 32 concurrent clients
(closed loop: each client sends its next request when the last one is answered).

For each concurrency it prints, as medians over --repeat runs of the per-run figures:

- p50 / p95 / p99 end-to-end latency of the successful stories, as the client sees it;
- throughput: successful stories per second of wall time;
- the share of answers shed (503 from a service's load shedding, or 429) among all
  answers, and how fast the refusals came (p50 / p95 of the shed answers alone: a
  full queue must refuse at once, well under the queue timeout);
- other failures (another 5xx, another 4xx, a transport error, and a 503 because the
  gateway's watchdog holds a service down: an outage, not shedding) as an error count;
- the gateway's own overhead: end-to-end time minus the time the two services report
  they worked (their `Server-Timing` headers, returned by the gateway as
  `caption_service_ms` and `textgen_service_ms`), as a share of the total. Target: at
  most 10 % at concurrency 1.

Every service of the stack gets the same bounds, passed to `talkative serve`'s children
as GATEWAY_* / CAPTION_* / TEXTGEN_* variables and printed in the header: at most
--max-concurrency requests at once, up to --max-queue more waiting at most
--queue-timeout seconds (then 503); with the queue full, 503 at once. With the defaults
(the services' own: 8, 16, 10 s) 32 clients are more than the gateway holds (8 + 16),
so its queue fills and it sheds. A shed client waits the Retry-After it was given before
its next request (--no-honour-retry-after: at once), as a polite client would. The
clients stand for as many people but all come from 127.0.0.1, so the gateway's cap on
bodies one address may be sending at once is raised to the largest concurrency
(GATEWAY_MAX_UPLOADS_PER_CLIENT); caption- and textgen-service keep theirs, since the
gateway is one client to them in production too.

The verdict line says whether shedding starts before latency passes the queue timeout:
at every concurrency up to the first that sheds, the successful stories' p99 is under
the queue timeout, and there the refusals' p95 is under a tenth of it.

Benchmarks tell the load: all processes share this machine's cores, so the header gives
the load average before the stack started, and each row the 1-minute load average
before it and the CPU that other processes (not the bench, not the stack) used during
it, in cores. The figures are for this machine, not a GPU host.

    python bench/stories.py [--requests 12] [--concurrency 1,8,32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

TARGET_SHARE = 0.10
SHED_STATUS = (503, 429)
FAST_REFUSAL_SHARE = 0.10  # refusals "well under" the queue timeout: p95 below a tenth of it
MAX_PAUSE_S = 30.0  # a Retry-After longer than this is cut to it
SERVICE_PREFIXES = ("GATEWAY", "CAPTION", "TEXTGEN")


@dataclass
class Run:
    """The answers of one run at one concurrency."""

    wall_s: float = 0.0
    ok_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    shed_kinds: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # kind -> the first detail seen
    load_1m: float | None = None
    other_cores: float | None = None

    @property
    def answers(self) -> int:
        return len(self.ok_ms) + len(self.shed_ms) + sum(self.errors.values())

    def figures(self) -> dict[str, float | None]:
        ok, shed = np.array(self.ok_ms), np.array(self.shed_ms)
        overhead = np.array(self.overhead_ms)
        return {
            "p50": float(np.percentile(ok, 50)) if ok.size else None,
            "p95": float(np.percentile(ok, 95)) if ok.size else None,
            "p99": float(np.percentile(ok, 99)) if ok.size else None,
            "ok_per_s": len(self.ok_ms) / self.wall_s if self.wall_s else 0.0,
            "shed_share": len(self.shed_ms) / self.answers if self.answers else 0.0,
            "shed_p50": float(np.percentile(shed, 50)) if shed.size else None,
            "shed_p95": float(np.percentile(shed, 95)) if shed.size else None,
            "errors": float(sum(self.errors.values())),
            "overhead_p50": float(np.median(overhead)) if overhead.size else None,
            "overhead_share": float(overhead.sum() / ok.sum()) if ok.size else None,
        }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _stack_env(args: argparse.Namespace) -> dict[str, str]:
    """The bounds every service gets, whatever the shell or a .env file says."""
    env = dict(os.environ)
    for prefix in SERVICE_PREFIXES:
        env[f"{prefix}_MAX_CONCURRENCY"] = str(args.max_concurrency)
        env[f"{prefix}_MAX_QUEUE"] = str(args.max_queue)
        env[f"{prefix}_QUEUE_TIMEOUT_S"] = str(args.queue_timeout)
    # The bench's clients stand for as many people but share one address: the gateway's
    # per-address cap on bodies being sent at once would refuse them as one client.
    env["GATEWAY_MAX_UPLOADS_PER_CLIENT"] = str(args.max_uploads_per_client)
    return env


def _start_stack(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "talkative.cli",
        "serve",
        "--port",
        str(port),
        "--caption-port",
        str(free_port()),
        "--textgen-port",
        str(free_port()),
        "--models-dir",
        str(args.repository),
        "--text-models",
        args.model,
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=_stack_env(args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"talkative serve exited with status {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the stack was not ready in time")


# What else ran: CPU the whole machine used minus what the bench and the stack used.


def _machine_busy_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0  # another guest's time, not ours to count
    return (sum(ticks[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds used so far by `root` and each of its descendants, by pid."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, utime + stime in s)
    hz = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the name, in parentheses, may hold spaces: split after its last ")"
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / hz)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return {pid: stats[pid][1] for pid in tree if pid in stats}


def _own_cpu_s() -> float:
    own = os.times()
    return own.user + own.system


class OtherLoad:
    """Cores used by other processes between start() and stop(); None off Linux.

    The stack's CPU is counted per pid, so a service killed and restarted in between
    (bench/recovery.py) does not take its whole past CPU time out of the sum: a new pid
    counts from zero, a dead one only up to the last snapshot."""

    def __init__(self, stack_pid: int) -> None:
        self.stack_pid = stack_pid
        self.busy: float | None = None
        self.tree: dict[int, float] = {}
        self.own = 0.0
        self.started = 0.0

    def start(self) -> None:
        self.busy = _machine_busy_s()
        self.tree = _tree_cpu_s(self.stack_pid) if self.busy is not None else {}
        self.own = _own_cpu_s()
        self.started = time.perf_counter()

    def stop(self) -> float | None:
        busy = _machine_busy_s()
        if busy is None or self.busy is None:
            return None
        wall = time.perf_counter() - self.started
        now = _tree_cpu_s(self.stack_pid)
        ours = _own_cpu_s() - self.own
        ours += sum(cpu - self.tree.get(pid, 0.0) for pid, cpu in now.items())
        other = (busy - self.busy) - ours
        return max(0.0, other / wall) if wall > 0 else None


# The clients.


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", "")) if isinstance(body, dict) else str(body)[:200]


def _shed_kind(response: Any) -> str:
    if response.status_code == 429:
        return "429"
    detail = _detail(response)
    if "queue is full" in detail:
        return "queue full"
    if "at capacity" in detail:
        return "queue timeout"
    # Anything else is not load shedding: a dependency the gateway's watchdog holds down
    # (it stopped answering health checks), counted with the errors so that the verdict
    # cannot mistake an outage for early refusal.
    return "dependency down"


def _pause_s(response: Any) -> float:
    try:
        return min(MAX_PAUSE_S, max(0.0, float(response.headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0


async def _one(
    client: Any,
    url: str,
    photo: tuple[str, bytes],
    args: argparse.Namespace,
    seed: int,
    run: Run | None,
) -> float:
    """Send one story request and file its answer in `run`; return the pause before the next."""
    import httpx

    name, data = photo
    started = time.perf_counter()
    try:
        response = await client.post(
            url + "/v1/stories",
            files={"image": (f"{name}.jpg", data, "image/jpeg")},
            data={
                "model": args.model,
                "max_new_tokens": str(args.max_new_tokens),
                "seed": str(seed),
            },
        )
    except httpx.HTTPError as exc:
        if run is not None:
            why = f"transport {exc.__class__.__name__}"
            run.errors[why] = run.errors.get(why, 0) + 1
            run.examples.setdefault(why, str(exc) or repr(exc))
        return 0.0
    elapsed_ms = (time.perf_counter() - started) * 1000
    if run is None:  # warm-up
        return 0.0
    if response.status_code == 200:
        timings = response.json()["timings"]
        services = timings["caption_service_ms"] + timings["textgen_service_ms"]
        run.ok_ms.append(elapsed_ms)
        run.overhead_ms.append(elapsed_ms - services)
        return 0.0
    if response.status_code in SHED_STATUS:
        kind = _shed_kind(response)
        if kind == "dependency down":
            why = "503 dependency down"
            run.errors[why] = run.errors.get(why, 0) + 1
            run.examples.setdefault(why, _detail(response))
            return _pause_s(response) if args.honour_retry_after else 0.0
        run.shed_ms.append(elapsed_ms)
        run.shed_kinds[kind] = run.shed_kinds.get(kind, 0) + 1
        if kind == "429":
            run.examples.setdefault(kind, _detail(response))
        return _pause_s(response) if args.honour_retry_after else 0.0
    why = f"status {response.status_code}"
    run.errors[why] = run.errors.get(why, 0) + 1
    run.examples.setdefault(why, _detail(response))
    return 0.0


async def _run(
    url: str, photos: list[tuple[str, bytes]], args: argparse.Namespace, concurrency: int
) -> Run:
    import httpx

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.requests * concurrency):
        queue.put_nowait(i)
    run = Run()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            pause = await _one(client, url, photos[i % len(photos)], args, i, run)
            if pause:
                await asyncio.sleep(pause)

    limits = httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await _one(client, url, photos[0], args, 0, None)  # warm-up, not counted
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        run.wall_s = time.perf_counter() - started
    return run


# The report.


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def _verdict(rows: list[tuple[int, dict[str, float | None]]], timeout_ms: float) -> str:
    first_shed = next((i for i, (_, f) in enumerate(rows) if (f["shed_share"] or 0) > 0), None)
    if first_shed is None:
        return "no (no concurrency shed; raise --concurrency or lower --max-queue)"
    concurrency, shed_row = rows[first_shed]
    slow = [c for c, f in rows[: first_shed + 1] if f["p99"] is not None and f["p99"] >= timeout_ms]
    shed_p95 = shed_row["shed_p95"] or 0.0
    ok_p99 = shed_row["p99"]
    fast = shed_p95 < FAST_REFUSAL_SHARE * timeout_ms
    answer = "yes" if not slow and fast else "no"
    reasons = [
        f"first shed at {concurrency} clients",
        f"successful p99 there {_ms(ok_p99)} ms vs queue timeout {timeout_ms:.0f} ms",
        f"refusals' p95 {shed_p95:.0f} ms "
        f"({'<' if fast else '>='} {FAST_REFUSAL_SHARE:.0%} of the timeout)",
    ]
    if slow:
        reasons.append(f"p99 passed the timeout already at {', '.join(map(str, slow))} clients")
    return f"{answer} ({'; '.join(reasons)})"


def _concurrencies(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrencies must be positive integers")
    return values


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown, except None: those options say in words what they default to."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser(main, formatter_class=_Help)
    repository_option(parser, "model repository laid out as <name>/<version>/")
    parser.add_argument("--model", default="char_lstm_en", help="text model of the stories")
    parser.add_argument(
        "--max-new-tokens", type=int, default=200, help="story length asked for, in tokens"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=12,
        metavar="N",
        help="requests per client in each run (so clients x requests answers a run, "
        "refusals and errors included)",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrencies,
        default="1,8,32",
        metavar="N,N,...",
        help="comma-separated numbers of concurrent clients, one row each",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per concurrency; a row gives the median of the runs' figures",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=8,
        help="requests each service (gateway, caption, textgen) serves at once (*_MAX_CONCURRENCY)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=16,
        help="requests that may wait for a slot in each service; beyond, 503 at once (*_MAX_QUEUE)",
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=10.0,
        help="seconds a waiting request may wait for a slot before its 503 (*_QUEUE_TIMEOUT_S)",
    )
    parser.add_argument(
        "--max-uploads-per-client",
        type=int,
        default=None,
        metavar="N",
        help="the gateway's cap on request bodies one address may be sending at once "
        "(GATEWAY_MAX_UPLOADS_PER_CLIENT); the bench's clients all come from 127.0.0.1, "
        "so by default it is the largest --concurrency, and they are not refused as one "
        "client. caption- and textgen-service keep their own cap (the gateway is one "
        "client to them) (default: the largest --concurrency)",
    )
    parser.add_argument(
        "--honour-retry-after",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"after a 503/429 a client waits its Retry-After (at most {MAX_PAUSE_S:g} s) "
        "before its next request; with --no-honour-retry-after it sends at once",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Latency (p50, p95, p99 of successful stories), throughput and load shedding (share of 503/429
    answers and how fast they come) of POST /v1/stories through the local stack (`talkative serve`)
    at several numbers of concurrent clients, and the gateway's own overhead as a share of the
    latency. Each row is the median of --repeat runs; the header and rows say how loaded the machine
    was."""
    parser = _parser()
    args = parser.parse_args(argv)
    if min(args.requests, args.max_new_tokens, args.repeat, args.max_concurrency) < 1:
        parser.error("--requests, --max-new-tokens, --repeat and --max-concurrency must be >= 1")
    if args.max_queue < 0 or args.queue_timeout <= 0:
        parser.error("--max-queue must be >= 0 and --queue-timeout > 0")
    if args.max_uploads_per_client is None:
        args.max_uploads_per_client = max(args.concurrency)
    if args.max_uploads_per_client < 1:
        parser.error("--max-uploads-per-client must be >= 1")

    from training.captioner import offline_photos

    photos = [(p.name, offline_photos.as_bytes(p, "JPEG")) for p in offline_photos.PHOTOS]
    load_before = os.getloadavg()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack = _start_stack(args, port)
    try:
        _wait_ready(url, stack)
        held = args.max_concurrency + args.max_queue
        print(
            f"stack: talkative serve, {args.model}, {args.max_new_tokens} new tokens, "
            f"{os.cpu_count()} CPU cores shared by the three services and the clients"
        )
        print(
            f"limits of each service (GATEWAY_/CAPTION_/TEXTGEN_ env): max_concurrency "
            f"{args.max_concurrency}, max_queue {args.max_queue}, queue_timeout_s "
            f"{args.queue_timeout:g}: the gateway holds {held}, then sheds at once; "
            f"gateway max_uploads_per_client {args.max_uploads_per_client} (all clients "
            "share 127.0.0.1)"
        )
        print(
            f"clients: closed loop, {args.requests} requests each per run, {args.repeat} runs "
            f"per row (medians shown); after a 503/429: "
            f"{'wait its Retry-After' if args.honour_retry_after else 'at once'}"
        )
        print(
            "load average before the stack started (1/5/15 min): "
            + " / ".join(f"{v:.2f}" for v in load_before)
        )
        if max(args.concurrency) <= held:
            print(
                f"note: no concurrency exceeds {held}: the queue never fills, "
                "refusals can only come from the queue timeout"
            )
        print(
            f"{'clients':>7} {'answers':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
            f"{'ok/s':>6} {'shed':>6} {'shed p50':>8} {'shed p95':>8} {'errors':>6} "
            f"{'ovh p50 ms':>10} {'ovh share':>9} {'load 1m':>7} {'other cores':>11}"
        )
        other = OtherLoad(stack.pid)
        rows: list[tuple[int, dict[str, float | None]]] = []
        for concurrency in args.concurrency:
            runs: list[Run] = []
            for _ in range(args.repeat):
                load_1m = os.getloadavg()[0]
                other.start()
                run = asyncio.run(_run(url, photos, args, concurrency))
                run.load_1m, run.other_cores = load_1m, other.stop()
                runs.append(run)
            per_run = [r.figures() for r in runs]
            med = {key: _median([f[key] for f in per_run]) for key in per_run[0]}
            rows.append((concurrency, med))
            answers = statistics.median(r.answers for r in runs)
            other_cores = _median([r.other_cores for r in runs])
            share = med["overhead_share"]
            print(
                f"{concurrency:>7} {answers:>7.0f} {_ms(med['p50']):>7} {_ms(med['p95']):>7} "
                f"{_ms(med['p99']):>7} {med['ok_per_s'] or 0:>6.2f} {med['shed_share'] or 0:>6.1%} "
                f"{_ms(med['shed_p50']):>8} {_ms(med['shed_p95']):>8} "
                f"{med['errors'] or 0:>6.0f} {_ms(med['overhead_p50']):>10} "
                f"{'-' if share is None else f'{share:.1%}':>9} "
                f"{runs[0].load_1m or 0:>7.2f} "
                f"{'n/a' if other_cores is None else f'{other_cores:.2f}':>11}"
            )
            shed_kinds: dict[str, int] = {}
            errors: dict[str, int] = {}
            examples: dict[str, str] = {}
            for r in runs:
                for kind, text in r.examples.items():
                    examples.setdefault(kind, text)
                for kind, n in r.shed_kinds.items():
                    shed_kinds[kind] = shed_kinds.get(kind, 0) + n
                for why, n in r.errors.items():
                    errors[why] = errors.get(why, 0) + n
            loads = ", ".join(f"{r.load_1m or 0:.2f}" for r in runs)
            notes = [f"load 1m before each run: {loads}"]
            if shed_kinds:
                notes.append(f"shed over the runs: {_counts(shed_kinds)}")
            if errors:
                notes.append(f"errors over the runs: {_counts(errors)}")
            print(f"{'':>7} " + "; ".join(notes))
            for kind, text in sorted(examples.items()):
                print(f"{'':>7} first {kind}: {text[:160]}")
            if concurrency == 1 and share is not None:
                verdict = "met" if share <= TARGET_SHARE else "not met"
                print(f"{'':>7} gateway overhead at 1 client: target <= 10 %: {verdict}")
        print(
            "shedding starts before latency passes the queue timeout: "
            + _verdict(rows, args.queue_timeout * 1000)
        )
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
