"""End-to-end story latency through the local stack, and the gateway's share of it.

Starts the real stack with `talkative serve` (caption-service, textgen-service and
the gateway as processes, models in-process, on 127.0.0.1), then sends
`POST /v1/stories` with the offline photos from 1 and from 8 concurrent clients.
Prints p50 / p95 end-to-end latency as the client sees it, and the gateway's own
overhead: end-to-end time minus the time the two services report they worked
(their `Server-Timing` headers, returned by the gateway as `caption_service_ms`
and `textgen_service_ms`), as a share of the total. Target: at most 10 % at
concurrency 1. All processes share this machine's cores, so at concurrency 8 the
requests queue for CPU; the figures are for this machine, not a GPU host.

    python bench/stories.py [--requests 12] [--model char_lstm_en] [--max-new-tokens 200]
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
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port  # noqa: E402

TARGET_SHARE = 0.10


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
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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


async def _one(
    client: Any, url: str, photo: tuple[str, bytes], args: argparse.Namespace, seed: int
) -> dict[str, float]:
    name, data = photo
    started = time.perf_counter()
    response = await client.post(
        url + "/v1/stories",
        files={"image": (f"{name}.jpg", data, "image/jpeg")},
        data={"model": args.model, "max_new_tokens": str(args.max_new_tokens), "seed": str(seed)},
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    timings = response.json()["timings"]
    services = timings["caption_service_ms"] + timings["textgen_service_ms"]
    return {"e2e_ms": elapsed_ms, "services_ms": services, "overhead_ms": elapsed_ms - services}


async def _run(
    url: str, photos: list[tuple[str, bytes]], args: argparse.Namespace, concurrency: int
) -> list[dict[str, float]]:
    import httpx

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.requests * concurrency):
        queue.put_nowait(i)
    results: list[dict[str, float]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            results.append(await _one(client, url, photos[i % len(photos)], args, seed=i))

    async with httpx.AsyncClient(timeout=600) as client:
        await _one(client, url, photos[0], args, seed=0)  # warm-up, not counted
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/stories.py",
        description="End-to-end latency (p50, p95) of POST /v1/stories through the local stack "
        "at 1 and 8 concurrent clients, and the gateway's own overhead as a share of it.",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=ROOT / "serving" / "models",
        help="model repository <name>/<version>/ (default: %(default)s)",
    )
    parser.add_argument("--model", default="char_lstm_en", help="text model (default: %(default)s)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=200, help="story length (default: %(default)s)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=12,
        help="requests per client at each concurrency (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8],
        help="comma-separated numbers of concurrent clients (default: 1,8)",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.max_new_tokens < 1 or min(args.concurrency) < 1:
        parser.error("--requests, --max-new-tokens and --concurrency take positive integers")

    from training.captioner import offline_photos

    photos = [(p.name, offline_photos.as_bytes(p, "JPEG")) for p in offline_photos.PHOTOS]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack = _start_stack(args, port)
    try:
        _wait_ready(url, stack)
        print(
            f"stack: talkative serve, {args.model}, {args.max_new_tokens} new tokens, "
            f"{os.cpu_count()} CPU cores shared by the three services and the clients"
        )
        print(
            f"{'clients':>7} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>6} "
            f"{'overhead p50 ms':>16} {'overhead share':>15}"
        )
        for concurrency in args.concurrency:
            started = time.perf_counter()
            rows = asyncio.run(_run(url, photos, args, concurrency))
            wall = time.perf_counter() - started
            e2e = np.array([r["e2e_ms"] for r in rows])
            overhead = np.array([r["overhead_ms"] for r in rows])
            share = float(overhead.sum() / e2e.sum())
            print(
                f"{concurrency:>7} {len(rows):>8} {np.percentile(e2e, 50):>8.0f} "
                f"{np.percentile(e2e, 95):>8.0f} {len(rows) / wall:>6.2f} "
                f"{statistics.median(overhead):>16.1f} {share:>14.1%}"
            )
            if concurrency == 1:
                verdict = "met" if share <= TARGET_SHARE else "not met"
                print(f"{'':>7} gateway overhead at 1 client: target <= 10 %: {verdict}")
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
