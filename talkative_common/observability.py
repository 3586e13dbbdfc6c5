"""/healthz, /readyz and /metrics for every service, request metrics and a concurrency bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkative_common.asgi import HttpMiddleware
from talkative_common.problems import problem_response


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


ReadinessCheck = Callable[[], Awaitable[Readiness]]


class ReadinessReport(BaseModel):
    """The body of /readyz, ready (200) or not (503)."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="each model or dependency, and how it is")


class Metrics:
    """One Prometheus registry per app, so several apps can live in one test process."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "requests being served", ["service"], registry=self.registry
        )
        self.rejected = Counter(
            "http_requests_rejected_total",
            "requests refused when saturated",
            ["service"],
            registry=self.registry,
        )
        self.queued = Gauge(
            "http_requests_queued",
            "requests waiting for a slot (the queue depth)",
            ["service"],
            registry=self.registry,
        )
        self.service = service


class ConcurrencyLimit:
    """ASGI middleware: at most `limit` requests in the app; up to `max_queue` more wait
    `wait_s` for a slot, then get 503; beyond that queue, a request gets 503 at once
    (shedding early beats making a client wait for a refusal it could have had at once).

    Health, readiness and metrics bypass it, so an orchestrator can still see a busy service.
    """

    EXEMPT = ("/healthz", "/readyz", "/metrics")

    def __init__(
        self, app: ASGIApp, limit: int, wait_s: float, metrics: Metrics, max_queue: int = 64
    ) -> None:
        self.app, self.wait_s, self.metrics = app, wait_s, metrics
        self.slots = asyncio.Semaphore(limit)
        self.max_queue, self.waiting = max_queue, 0

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, why: str) -> None:
        self.metrics.rejected.labels(self.metrics.service).inc()
        busy = problem_response(503, why, headers={"Retry-After": "2"}, instance=scope["path"])
        await busy(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.slots.locked() and self.waiting >= self.max_queue:
            await self._refuse(
                scope,
                receive,
                send,
                "The service is at capacity and its queue is full; try again shortly.",
            )
            return
        self.waiting += 1
        self.metrics.queued.labels(self.metrics.service).inc()
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=self.wait_s)
        except TimeoutError:
            await self._refuse(
                scope, receive, send, "The service is at capacity; try again shortly."
            )
            return
        finally:
            self.waiting -= 1
            self.metrics.queued.labels(self.metrics.service).dec()
        self.metrics.in_flight.labels(self.metrics.service).inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.in_flight.labels(self.metrics.service).dec()
            self.slots.release()


# The methods a label may name; any other (a client may send any token as a method)
# is counted as "other", so made-up methods cannot grow /metrics without limit.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Measure(HttpMiddleware):
    """ASGI middleware: request count and latency per route, and a Server-Timing header.

    The header (`app;dur=<ms>`, W3C Server-Timing) tells a caller how long this service
    worked on its request, so the gateway can report its own overhead apart from it.
    A plain ASGI class, not an `@app.middleware("http")`: that wrapper costs a
    millisecond or more per request.

    Written here rather than taken from prometheus-fastapi-instrumentator (8.1, read
    before deciding): it labels series with the raw request method, so invented methods
    would again grow /metrics without bound (its only remedy drops the method label),
    it builds a Request and a Response object per request, and it has no Server-Timing.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, status = time.perf_counter(), 500

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                ms = (time.perf_counter() - started) * 1000
                timing = (b"server-timing", f"app;dur={ms:.2f}".encode())
                message["headers"] = [*message.get("headers", []), timing]
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")  # templates, not raw paths: bounded labels
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            service = self.metrics.service
            self.metrics.requests.labels(service, method, path, str(status)).inc()
            self.metrics.latency.labels(service, method, path).observe(
                time.perf_counter() - started
            )


def install_observability(
    app: FastAPI, service: str, readiness: ReadinessCheck, *, metrics_route: bool = True
) -> Metrics:
    """Probes and request metrics; `metrics_route=False` when /metrics has its own port."""
    metrics = Metrics(service)
    app.state.metrics = metrics

    app.add_middleware(Measure, metrics=metrics)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Models loaded and dependencies reachable",
        response_model=ReadinessReport,
        responses={
            503: {"model": ReadinessReport, "description": "not ready yet, or a dependency is down"}
        },
    )
    async def readyz() -> JSONResponse:
        report = await readiness()
        body = {"status": "ready" if report.ready else "not ready", "checks": report.checks}
        if report.ready:
            return JSONResponse(body)
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    if metrics_route:

        @app.get(
            "/metrics",
            tags=["operations"],
            summary="Prometheus metrics (text exposition format)",
            response_class=PlainTextResponse,  # so OpenAPI says text/plain, not JSON
        )
        async def prometheus() -> Response:
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
