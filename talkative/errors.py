"""Domain errors -> exit codes: the one mapping every `talkative` command uses.

| exit | when |
|---|---|
| 0 | done |
| 1 | anything else: a model that breaks its contract, a bug (the message says which) |
| 2 | the input: a file that is not a usable photo, an option out of range, an unknown model |
| 75 | unavailable for now (EX_TEMPFAIL of sysexits.h, as the bot uses): try again later |

The commands reach the services over their HTTP API (talkative/stack.py), so an error
comes back as a problem document; `from_problem` turns it back into the domain error the
service raised, by the one status table of talkative_common/errors.py.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from talkative_common.errors import STATUS, InvalidInput, NotFound, TalkativeError, Unavailable

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL
EXIT_CODES: tuple[tuple[type[TalkativeError], int], ...] = (
    (InvalidInput, EXIT_USAGE),
    (NotFound, EXIT_USAGE),
    (Unavailable, EXIT_TEMPFAIL),
)
# Shown under each command's --help, so the codes are documented where they are met.
EPILOG = (
    "exit status: 0 done; 2 bad input (not a usable photo, an option out of range, an "
    "unknown model); 75 a model or service is unavailable for now, try again; 1 anything else"
)


def exit_code(error: TalkativeError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return EXIT_FAILED


def report(error: TalkativeError, context: str = "") -> int:
    """Print the error for a person (stderr) and return its exit code."""
    print(f"error: {context}{error.detail}", file=sys.stderr)
    return exit_code(error)


def from_problem(response: httpx.Response) -> TalkativeError:
    """A service's problem+json answer -> the domain error it stands for.

    Statuses the edges answer themselves (400, 413, 415: the request as sent) are the
    caller's input too; 429 and the gateway's 502/504 are "not now".
    """
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
    extra = {"errors": body["errors"]} if isinstance(body.get("errors"), list) else {}
    kind: type[TalkativeError] = next((k for k, s in STATUS if s == status), TalkativeError)
    if status in (400, 413, 415):
        kind = InvalidInput
    elif status in (429, 502, 504):
        kind = Unavailable
    if kind is Unavailable:
        retry = response.headers.get("retry-after", "")
        return Unavailable(detail, retry_after_s=int(retry) if retry.isdigit() else 5, **extra)
    return kind(detail, **extra)
