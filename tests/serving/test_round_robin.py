"""Two model servers behind one gRPC target: textgen-service spreads its calls over both
(gRPC round_robin), and when one is killed under load the other takes every call, with no
failed request, not even the calls that were in flight on the killed server (the client
retries UNAVAILABLE; Predict is idempotent).

Traffic shares are read from each server's own Prometheus request counts; which calls are
in flight on which server, from the client channel's own channelz counters (gRPC core keeps
them for every channel of the process; textgen-service runs here, in a thread)."""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT
from tests.support.model_server import ModelServerProcess, serve_repository, wait_until
from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

MONITORING = ROOT / "serving" / "monitoring.config"
COUNT = re.compile(
    r"^:tensorflow:serving:request_count(?:_total)?\{(?P<labels>[^}]*)\} (?P<n>\S+)$", re.M
)
CALLERS = 6  # concurrent clients of textgen-service (under its max_concurrency of 8)
BEFORE_EACH = 10  # predictions each server answers under load before the kill
AFTER = 25  # requests started after the kill that must all succeed


def predictions(server: ModelServerProcess) -> int:
    """Predict calls this server answered for tiny_en (its own metrics, TF Serving's names)."""
    text = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    return sum(
        int(float(m["n"]))
        for m in COUNT.finditer(text)
        if 'model_name="tiny_en"' in m["labels"] and 'API="predict"' in m["labels"]
    )


# --- channelz: the client's own view of each server ------------------------------------
_cygrpc: Any = importlib.import_module("grpc._cython.cygrpc")  # what grpcio-channelz wraps


def _channel(target: str) -> dict[str, Any] | None:
    top = json.loads(_cygrpc.channelz_get_top_channels(0))
    found = [c for c in top.get("channel", []) if c["data"].get("target") == target]
    return found[-1] if found else None


def calls(target: str, address: str | None = None) -> dict[str, int]:
    """started/succeeded/failed/in_flight of the channel to `target` (a client in this
    process), or of its subchannel to one `address` of it; zeros before the first call."""
    channel = _channel(target)
    data: dict[str, Any] = {}
    if channel is not None and address is None:
        data = channel["data"]
    elif channel is not None:
        for ref in channel.get("subchannelRef", []):
            sub = json.loads(_cygrpc.channelz_get_subchannel(int(ref["subchannelId"])))
            if sub["subchannel"]["data"].get("target") == f"ipv4:{address}":
                data = sub["subchannel"]["data"]
    counts = {k: int(data.get(f"calls{k.title()}", 0)) for k in ("started", "succeeded", "failed")}
    counts["in_flight"] = counts["started"] - counts["succeeded"] - counts["failed"]
    return counts


# --- callers that keep textgen-service busy ---------------------------------------------
@dataclass
class Answer:
    after_kill: bool  # the request was sent after the kill
    status: int  # 0: no HTTP answer at all
    detail: str


@dataclass
class Callers:
    """CALLERS threads posting generations back to back until stopped; every answer kept."""

    url: str
    killed: bool = False
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, caller: int) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            i = 0
            while not self._stop.is_set():
                after_kill = self.killed
                body = {"prompt": "And the king", "model": "tiny_en", "max_new_tokens": 5}
                try:
                    r = client.post("/v1/generations", json=body | {"seed": caller * 10_000 + i})
                    answer = Answer(after_kill, r.status_code, r.text[:300])
                except httpx.HTTPError as exc:
                    answer = Answer(after_kill, 0, repr(exc))
                with self._lock:
                    self.answers.append(answer)
                i += 1

    def failed(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]

    def count(self, *, after_kill: bool | None = None) -> int:
        with self._lock:
            return sum(after_kill is None or a.after_kill == after_kill for a in self.answers)

    def check(self) -> None:
        """Fail at once, with what was answered, when any request failed."""
        assert not self.failed(), self.failed()[:5]

    @contextmanager
    def running(self) -> Iterator[Callers]:
        threads = [
            threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(CALLERS)
        ]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in threads:
                t.join()


def until(predicate: Callable[[], bool], what: str, seen: Callable[[], object]) -> None:
    wait_until(predicate, what, timeout=300, seen=seen)  # a bound for a hang, not a speed check


def test_calls_spread_over_two_servers_and_survive_a_kill_under_load(
    tiny_repository: Path, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    flags = [f"--monitoring_config_file={MONITORING}"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve_repository(tiny_repository, tmp_path / "a", extra_flags=flags) as first,
        serve_repository(tiny_repository, tmp_path / "b", extra_flags=flags) as second,
    ):
        target = f"ipv4:{first.grpc_target},{second.grpc_target}"
        settings = TextgenSettings(
            model_repository=tiny_repository,
            model_backend="grpc",
            model_server_grpc_target=target,
            models=["tiny_en"],
            default_model="tiny_en",
            model_retries=3,
        )
        with serve(create_app(settings)) as url:
            with Callers(url).running() as callers:
                # 1. Under load from CALLERS concurrent clients, both servers answer.
                base = predictions(first), predictions(second)
                shares = [0, 0]

                def both_served() -> bool:
                    callers.check()
                    shares[:] = [predictions(first) - base[0], predictions(second) - base[1]]
                    return min(shares) >= BEFORE_EACH

                until(both_served, "both servers to answer", lambda: (shares, callers.count()))
                requests_before = callers.count()

                # 2. Freeze one server so calls pile up on it (round robin keeps sending to a
                # connection that is still open), until every caller waits on it; then SIGKILL it
                # with those calls in flight.
                first.hold()

                def stuck() -> dict[str, int]:
                    return calls(target, first.grpc_target)

                try:
                    until(
                        lambda: stuck()["in_flight"] >= CALLERS,
                        f"{CALLERS} calls in flight on the frozen server",
                        lambda: (stuck(), calls(target, second.grpc_target), callers.count()),
                    )
                except BaseException:
                    first.release()  # so that the callers waiting on it can stop
                    raise
                in_flight = stuck()["in_flight"]
                failed_before = calls(target)["failed"]
                after_kill = predictions(second)  # nothing runs there: all wait on the other
                first.process.kill()  # type: ignore[union-attr]
                first.process.wait()  # type: ignore[union-attr]
                callers.killed = True

                # 3. The survivor takes every call: the ones cut off by the kill (retried) and all
                # new ones, none failing.
                def enough_after() -> bool:
                    callers.check()
                    return callers.count(after_kill=True) >= AFTER

                until(
                    enough_after, f"{AFTER} requests after the kill", lambda: callers.answers[-5:]
                )
            # Read once every caller stopped, before the service closes its channel.
            taken = predictions(second) - after_kill
            cut_off = calls(target)["failed"] - failed_before

    failed = callers.failed()
    total, after = callers.count(), callers.count(after_kill=True)
    spread = (
        f"before the kill ({CALLERS} concurrent callers, {requests_before} requests): "
        f"{shares[0]} and {shares[1]} predictions ({shares[0] / sum(shares):.0%} / "
        f"{shares[1] / sum(shares):.0%})"
    )
    kill = (
        f"SIGKILL with {in_flight} calls in flight on the killed server: {cut_off} calls cut "
        f"off and retried; {len(failed)} of {total} requests failed"
    )
    survivor = (
        f"after the kill: the survivor answered {taken} predictions "
        f"({after} requests sent after it, {cut_off} calls cut off by it)"
    )
    for figure in (spread, kill, survivor):
        print(figure)
        record_property("figure", figure)

    assert not failed, failed[:5]  # no failed request across the kill, in flight or not
    assert min(shares) >= BEFORE_EACH, shares  # round robin: both take a share
    assert in_flight >= 1 and cut_off >= in_flight, (in_flight, cut_off)
    assert taken >= after >= AFTER, (taken, after)  # one Predict per generation, all on it
