"""Bot metrics, on the service app's Prometheus registry (talkative_common.observability)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.registry = r
        self.polls = Counter("bot_polls_total", "polls of the platform", ["platform"], registry=r)
        self.recorded = Counter(
            "bot_mentions_recorded_total", "new mentions recorded", ["platform"], registry=r
        )
        self.replies = Counter(
            "bot_replies_total", "replies posted by kind", ["platform", "kind"], registry=r
        )
        self.recovered = Counter(
            "bot_replies_recovered_total",
            "replies found already posted after a crash (not posted twice)",
            ["platform"],
            registry=r,
        )
        self.failures = Counter(
            "bot_failures_total", "failed steps by reason", ["platform", "reason"], registry=r
        )
        self.dead_letters = Counter(
            "bot_dead_letters_total",
            "mentions given up after max attempts",
            ["platform"],
            registry=r,
        )
        self.state = Gauge("bot_mentions", "mentions by state", ["platform", "state"], registry=r)
        self.paused_until = Gauge(
            "bot_rate_limited_until_seconds",
            "epoch second the platform rate limit resets (0 when not limited)",
            ["platform"],
            registry=r,
        )
        self.lease_active = Gauge(
            "bot_lease_active",
            "1 while this instance holds the lease and may post, 0 while it stands by",
            registry=r,
        )
        self.last_poll = Gauge(
            "bot_last_poll_timestamp_seconds", "last successful poll", ["platform"], registry=r
        )
        self.duration = Histogram(
            "bot_mention_seconds",
            "time to handle one mention step",
            ["platform"],
            registry=r,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
