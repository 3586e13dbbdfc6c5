"""Injected crash points for the crash tests: BOT_CRASH_AT=<point> kills the process there.

SIGKILL, not an exception: nothing is flushed or cleaned up, as in a real power cut or OOM kill.
Unset in production; naming an unknown point is refused at start so a typo cannot hide.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_record", "after_gateway", "after_intent", "after_post")
ENV = "BOT_CRASH_AT"


def check() -> None:
    point = os.environ.get(ENV)
    if point and point not in POINTS:
        raise ValueError(f"{ENV}={point!r}: known crash points are {', '.join(POINTS)}")


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
