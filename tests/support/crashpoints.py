"""Crash points for the bot's crash tests, injected from here: production has no test hook.

BOT_CRASH_AT=<point> kills a `bot-service` subprocess with SIGKILL at that step: nothing is
flushed or cleaned up, as in a real power cut or OOM kill. tests/support/crash_hook is put
on the subprocess's PYTHONPATH (tests/bot/conftest.py run_bot), and its sitecustomize
calls install() at interpreter start, before the bot runs. The points wrap the bot's own
steps on each Bot instance:
- after_record: the store recorded new mentions;
- after_gateway: a story was composed through the gateway (and stored);
- after_intent: the intent to post was recorded, nothing posted yet;
- after_post: the platform took the reply, the store does not know yet.
A name that is not a point is refused at start, so a typo cannot hide.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

POINTS = ("after_record", "after_gateway", "after_intent", "after_post")
ENV = "BOT_CRASH_AT"


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(call: Callable[..., Any], when: Callable[[Any], bool]) -> Callable[..., Any]:
    """`call`, then SIGKILL when its result satisfies `when`."""

    @functools.wraps(call)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = call(*args, **kwargs)
        if when(result):
            _kill()
        return result

    return wrapped


def _wrap(bot: Any, point: str) -> None:
    if point == "after_record":
        bot.store.record = _after(bot.store.record, lambda added: added > 0)
    elif point == "after_gateway":
        bot._compose = _after(bot._compose, lambda _: True)
    elif point == "after_intent":
        bot.store.mark_intent = _after(bot.store.mark_intent, bool)
    elif point == "after_post":
        bot.platform.post_reply = _after(bot.platform.post_reply, lambda _: True)


def install() -> None:
    point = os.environ.get(ENV)
    if not point:
        return
    if point not in POINTS:
        print(
            f"bot-service: invalid configuration: {ENV}={point!r}: "
            f"known crash points are {', '.join(POINTS)}",
            file=sys.stderr,
        )
        sys.stderr.flush()
        os._exit(2)  # sitecustomize may not raise: site.py would only print a warning

    from bot_service.bot import Bot

    original_init = Bot.__init__

    @functools.wraps(original_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _wrap(self, point)

    Bot.__init__ = init  # type: ignore[method-assign]
