"""The bot's small HTTP face: /healthz, /readyz, /metrics (talkative_common.app), /v1/status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bot_service import __version__
from bot_service.bot import Bot
from bot_service.metrics import BotMetrics
from bot_service.settings import BotSettings
from talkative_common.app import create_service_app
from talkative_common.observability import Readiness


def create_app(settings: BotSettings, holder: dict[str, Bot]) -> tuple[FastAPI, BotMetrics]:
    """`holder["bot"]` is filled in once the bot exists (the metrics it needs come from here)."""

    async def readiness() -> Readiness:
        bot = holder.get("bot")
        if bot is None:
            return Readiness(False, {"bot": "starting"})
        now = bot.clock()
        checks = {"store": f"sqlite {bot.store.journal_mode()}"}
        if bot.lease is not None and not bot.lease.holding():
            # A standby is doing its job: ready, polling nothing until it takes over.
            lease = bot.lease.error or f"standby: {bot.lease.current_holder} is active"
            return Readiness(True, {**checks, "lease": lease})
        if bot.lease is not None:
            checks["lease"] = "active"
        stale = bot.last_poll_at is None or now - bot.last_poll_at > 3 * settings.poll_interval_s
        checks["platform"] = (
            f"rate limited for {bot.paused_until - now:.0f}s"
            if bot.paused_until > now
            else ("no successful poll yet" if bot.last_poll_at is None else "polled")
        )
        checks["dependencies"] = bot.outage_reason or "ok"
        ready = not stale and bot.outage_reason is None
        return Readiness(ready, checks)

    app = create_service_app(
        service="bot",
        title="Talkative bot-service",
        version=__version__,
        description="Answers images addressed to the bot with a story card. "
        "Operations endpoints only; errors are application/problem+json.",
        settings=settings,
        readiness=readiness,
    )
    metrics = BotMetrics(app.state.metrics.registry)

    @app.get("/v1/status", tags=["operations"], summary="Mentions by state and the pauses in force")
    async def status() -> dict[str, Any]:
        bot = holder.get("bot")
        if bot is None:
            return {"platform": settings.platform, "state": "starting"}
        return {
            "platform": bot.platform.name,
            "lease": bot.lease.status() if bot.lease is not None else None,
            "mentions": bot.store.counts(bot.platform.name),
            "rate_limited_until": bot.paused_until or None,
            "outage": bot.outage_reason,
        }

    return app, metrics
