"""`bot-service run` (poll loop with health and metrics) and `bot-service run --once`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import get_args

import uvicorn
from pydantic import ValidationError

from bot_service.app import create_app
from bot_service.bot import Bot
from bot_service.gateway_client import GatewayClient
from bot_service.lease import LeaseKeeper, open_lease
from bot_service.metrics import BotMetrics
from bot_service.platforms import create_platform
from bot_service.settings import DEPRECATED_PLATFORMS as DEPRECATED
from bot_service.settings import BotSettings
from bot_service.settings import Platform as PlatformName
from bot_service.store import StateStore
from talkative_common.logging import configure_logging

log = logging.getLogger("bot_service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot-service",
        description="Talkative bot: answers images posted to it with a story card from the "
        "gateway. Configured by BOT_* environment variables (or .env); see docs/bot.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="poll the platform and answer mentions",
        description="Poll the platform every BOT_POLL_INTERVAL_S seconds and answer mentions; "
        "serves /healthz, /readyz and /metrics on BOT_HOST:BOT_PORT. SIGTERM or Ctrl-C "
        "finishes the mention in hand, then exits.",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="poll once, answer everything that is due, then exit (no HTTP server); "
        "exit status 0 when done, 75 when work is left because a dependency is down or "
        "another instance holds the lease",
    )
    run.add_argument(
        "--platform",
        choices=get_args(PlatformName),  # with the deprecated names, which still work
        metavar="{" + ",".join(p for p in get_args(PlatformName) if p not in DEPRECATED) + "}",
        help="override BOT_PLATFORM (`twitter` is the deprecated name of twitter-legacy)",
    )
    return parser


def _build(settings: BotSettings, metrics: BotMetrics) -> Bot:
    platform = create_platform(settings)
    key = settings.gateway_api_key
    gateway = GatewayClient(
        settings.gateway_url,
        settings.gateway_timeout_s,
        api_key=key.get_secret_value() if key else None,
    )
    store = StateStore(settings.state_path)
    name = settings.lease_name or f"talkative:bot:{platform.name}:lease"
    backend = open_lease(settings.lease_url, settings.state_path, name, settings.lease_ttl_s)
    lease = LeaseKeeper(backend, settings.lease_ttl_s)
    metrics.lease_active.set_function(lambda: float(lease.holding()))
    return Bot(settings, platform, gateway, store, metrics, lease=lease)


def _close(bot: Bot) -> None:
    if bot.lease is not None:
        bot.lease.stop()  # the bot has stopped posting: a standby may take over at once
    bot.platform.close()
    bot.gateway.close()
    bot.store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = BotSettings()
    except (ValueError, ValidationError) as exc:  # say what is wrong, without a traceback
        print(f"bot-service: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.platform:
        settings = settings.model_copy(update={"platform": args.platform})
    configure_logging(settings.log_level, settings.log_format, "bot-service")

    holder: dict[str, Bot] = {}
    app, metrics = create_app(settings, holder)
    try:
        bot = _build(settings, metrics)
    except ValueError as exc:  # missing credentials and the like: say so, no traceback
        print(f"bot-service: {exc}", file=sys.stderr)
        return 2
    holder["bot"] = bot
    if settings.platform_timeout_s > settings.lease_ttl_s / 3:
        log.warning(
            "BOT_PLATFORM_TIMEOUT_S (%g s) is over a third of BOT_LEASE_TTL_S (%g s): a post "
            "stuck that long while the lease is lost could overlap another instance's",
            settings.platform_timeout_s,
            settings.lease_ttl_s,
        )
    if bot.lease is not None:
        bot.lease.start()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the mention in hand, then stopping", signum)
        bot.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    try:
        if args.once:
            summary = bot.run_once()
            print(
                f"recorded {summary.recorded}, replied {summary.replied}, "
                f"dead letters {summary.failed}, pending {summary.pending}"
                + (f" (waiting: {summary.waiting_for})" if summary.waiting_for else "")
            )
            return 75 if summary.waiting_for else 0

        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, lifespan="on"
        )
        server = uvicorn.Server(config)
        # uvicorn leaves signals alone outside the main thread: ours stop the bot first.
        thread = threading.Thread(target=server.run, name="bot-http", daemon=True)
        thread.start()
        bot.run_forever()
        server.should_exit = True
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.1)
        return 0
    finally:
        _close(bot)


if __name__ == "__main__":
    sys.exit(main())
