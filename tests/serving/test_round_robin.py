"""Two model servers behind one gRPC target: textgen-service spreads its calls over both
(gRPC round_robin), and when one is killed the other takes every call, with no failed
request. Traffic shares are read from each server's own Prometheus request counts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.support.model_server import ModelServerProcess, serve_repository
from tests.support.servers import serve
from textgen_service.main import create_app
from textgen_service.settings import TextgenSettings

MONITORING = ROOT / "serving" / "monitoring.config"
COUNT = re.compile(
    r"^:tensorflow:serving:request_count(?:_total)?\{(?P<labels>[^}]*)\} (?P<n>\S+)$", re.M
)


def predictions(server: ModelServerProcess) -> int:
    """Predict calls this server answered for tiny_en (its own metrics, TF Serving's names)."""
    text = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    return sum(
        int(float(m["n"]))
        for m in COUNT.finditer(text)
        if 'model_name="tiny_en"' in m["labels"] and 'API="predict"' in m["labels"]
    )


def generate(client: httpx.Client, i: int) -> int:
    body = {"prompt": "And the king", "model": "tiny_en", "max_new_tokens": 5, "seed": i}
    return client.post("/v1/generations", json=body).status_code


def test_calls_spread_over_two_servers_and_survive_a_kill(
    tiny_repository: Path, tmp_path: Path
) -> None:
    flags = [f"--monitoring_config_file={MONITORING}"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve_repository(tiny_repository, tmp_path / "a", extra_flags=flags) as first,
        serve_repository(tiny_repository, tmp_path / "b", extra_flags=flags) as second,
    ):
        settings = TextgenSettings(
            model_repository=tiny_repository,
            model_backend="grpc",
            model_server_grpc_target=f"ipv4:{first.grpc_target},{second.grpc_target}",
            models=["tiny_en"],
            default_model="tiny_en",
            model_retries=3,
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as c:
            before = predictions(first), predictions(second)
            statuses = [generate(c, i) for i in range(40)]
            assert set(statuses) == {200}, statuses
            shares = [predictions(first) - before[0], predictions(second) - before[1]]
            print(f"two servers: {shares[0]} and {shares[1]} of {sum(shares)} predictions")
            assert min(shares) >= 10, shares  # round robin: about half each

            first.process.kill()  # type: ignore[union-attr]
            first.process.wait()  # type: ignore[union-attr]
            after_kill = predictions(second)
            statuses = [generate(c, 100 + i) for i in range(40)]
            assert set(statuses) == {200}, statuses  # no failed request across the kill
            taken = predictions(second) - after_kill
            print(f"after killing one: the other answered {taken} predictions for 40 requests")
            assert taken >= 40
