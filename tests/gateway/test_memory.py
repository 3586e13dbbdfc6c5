"""Memory under a burst of big photos: `talkative serve` as real processes, RSS from /proc.

Eight 40-megapixel RGBA PNGs at once (each a few hundred kB on the wire, 160 MB once
decoded). Every story must succeed, and once the burst is over each service must give
its memory back: settled RSS within SETTLED_MARGIN_MB of what it was before the burst.
The start, peak and settled RSS of each service are printed (`pytest -s` or `-rA`)
and repeated in the assertion message.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from tests.support.serve_process import ENV as CLI_ENV
from tests.support.serve_process import start_serve
from tests.support.servers import stop_process

SERVICES = ("gateway", "caption-service", "textgen-service")
BIG = (7296, 5472)  # a 40-megapixel sensor: 39.9 M pixels, under max_image_pixels (40 M)
BURST = 8
SETTLED_MARGIN_MB = 300
# All eight come from one address: let them in at once (the per-client upload cap has its
# own tests), so the burst is the decoding at its worst.
ENV = dict(CLI_ENV, GATEWAY_MAX_UPLOADS_PER_CLIENT=str(2 * BURST))


def big_png() -> bytes:
    """Mostly flat, so it compresses to well under the 10 MB body limit; some alpha."""
    image = Image.new("RGBA", BIG, (70, 120, 170, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((1000, 1000, 5000, 4000), fill=(200, 60, 40, 255))
    draw.ellipse((3000, 2000, 6500, 5000), fill=(240, 220, 90, 128))
    draw.rectangle((0, 0, 1500, 1500), fill=(0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def status_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (resident at most) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0, our own processes); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler:
    """Polls VmRSS of each pid while a burst runs: a peak even where VmHWM cannot be reset."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids, self.peak = pids, {name: 0 for name in pids}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.02):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], status_kb(pid, "VmRSS"))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()


@pytest.fixture()
def stack(gateway_repository: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """`talkative serve` on free ports: the gateway's URL and the pid of each service."""
    serving = start_serve(gateway_repository, tmp_path / "serve.log", ENV)
    process, log, ports = serving.process, serving.log, serving.ports
    try:
        serving.wait_ready()
        pids = serving.pids()
        assert set(pids) == set(SERVICES), log.read_text()
        yield f"http://127.0.0.1:{ports[0]}", pids
    finally:
        stop_process(process, timeout=60)


def table(rows: dict[str, dict[str, int]]) -> str:
    lines = [f"{'service':<16} {'start MB':>9} {'peak MB':>9} {'settled MB':>11} {'+MB':>6}"]
    for name, row in rows.items():
        start, peak, settled = (row[k] // 1024 for k in ("start", "peak", "settled"))
        lines.append(f"{name:<16} {start:>9} {peak:>9} {settled:>11} {settled - start:>+6}")
    return "\n".join(lines)


def test_memory_returns_after_a_burst_of_big_photos(
    stack: tuple[str, dict[str, int]], png: bytes, record_property: Callable[[str, object], None]
) -> None:
    url, pids = stack
    photo = big_png()
    assert len(photo) < 2_000_000
    form = {"model": "tiny_en", "max_new_tokens": "20"}

    def story(client: httpx.Client, data: bytes, name: str) -> httpx.Response:
        return client.post("/v1/stories", files={"image": (name, data, "image/png")}, data=form)

    with httpx.Client(base_url=url, timeout=300) as client:
        # One small story first: what the first request of any kind allocates is not counted.
        warm = story(client, png, "small.png")
        assert warm.status_code == 200, warm.text
        rows = {name: {"start": status_kb(pid, "VmRSS")} for name, pid in pids.items()}
        peaks_reset = all(reset_peak(pid) for pid in pids.values())

        began = time.perf_counter()
        with Sampler(pids) as sampler, ThreadPoolExecutor(BURST) as pool:
            clients = [httpx.Client(base_url=url, timeout=300) for _ in range(BURST)]
            try:
                answers = list(pool.map(lambda c: story(c, photo, "big.png"), clients))
            finally:
                for c in clients:
                    c.close()
        burst_s = time.perf_counter() - began
        for name, pid in pids.items():
            hwm = status_kb(pid, "VmHWM") if peaks_reset else 0
            rows[name]["peak"] = max(sampler.peak[name], hwm)
        statuses = [a.status_code for a in answers]

        # Settled: each service back within the margin. A bounded poll, not a fixed sleep;
        # a story after the burst shows the stack still works and lets idle work finish.
        def over() -> dict[str, int]:
            for name, pid in pids.items():
                rows[name]["settled"] = status_kb(pid, "VmRSS")
            return {
                name: (row["settled"] - row["start"]) // 1024
                for name, row in rows.items()
                if row["settled"] - row["start"] > SETTLED_MARGIN_MB * 1024
            }

        seen = []
        for _ in range(100):
            seen.append(over())
            if not seen[-1]:
                break
            time.sleep(0.1)
        report = table(rows)
        figure = (
            f"RSS around {BURST} concurrent {BIG[0]}x{BIG[1]} RGBA PNG stories:\n{report}\n"
            f"statuses {statuses}, burst {burst_s:.1f} s, settled after {len(seen)} polls"
        )
        print("\n" + figure)
        record_property("figure", figure)
        assert statuses == [200] * BURST, (
            [(a.status_code, a.text[:300]) for a in answers if a.status_code != 200],
            report,
        )
        assert not seen[-1], (
            f"RSS still over start + {SETTLED_MARGIN_MB} MB after {len(seen)} polls "
            f"(MB over, first and last poll: {seen[0]}, {seen[-1]}):\n{report}"
        )
        again = story(client, png, "small.png")
        assert again.status_code == 200, again.text
