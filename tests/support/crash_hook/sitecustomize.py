"""Loaded by Python at start in the bot subprocesses of the crash tests (this folder is on
their PYTHONPATH only): arms tests/support/crashpoints.py when BOT_CRASH_AT is set."""

import os

if os.environ.get("BOT_CRASH_AT"):
    from tests.support import crashpoints

    crashpoints.install()
