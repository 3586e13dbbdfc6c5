"""Prometheus metrics at the monitoring config's path, with TF Serving's metric names.

The names are those of servables/tensorflow/util.cc (request_count, request_latency) and
servables/tensorflow/saved_model_warmup_util.cc (model_warmup_latency, here a count of
replayed records); only the ones our tests and dashboards use are kept.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "API", "entrypoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=[10.0 * 1.8**i for i in range(33)],
            registry=self.registry,
        )
        self.warmup = Counter(
            ":tensorflow:serving:model_warmup_requests",
            "Warm-up records replayed before a version became AVAILABLE.",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.loads = Histogram(
            ":tensorflow:serving:model_load_latency",
            "Time (in microseconds) to load a model version, warm-up included.",
            ["model_name"],
            buckets=[1e3 * 2**i for i in range(20)],
            registry=self.registry,
        )

    def request(self, model: str, api: str, entrypoint: str, status: str, started: float) -> None:
        # `model` is "" until the request reached a served model: a made-up name in a
        # request must not create a series.
        self.requests.labels(model, api, entrypoint, status).inc()
        if status == "OK":
            self.latency.labels(model, api, entrypoint).observe(
                (time.perf_counter() - started) * 1e6
            )

    def loaded(self, model: str, version: int, seconds: float) -> None:
        self.loads.labels(model).observe(seconds * 1e6)

    def warmup_replayed(self, model: str, version: int, count: int) -> None:
        self.warmup.labels(model, str(version)).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
