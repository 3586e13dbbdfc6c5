"""Domain errors: what went wrong, said in the domain's words, with no HTTP in them.

Models, registries, image intake and clients of other services raise these. Each edge
maps them once: `talkative_common.problems.install_problem_handlers` turns them into problem+json
(`STATUS` below is the one table), and the CLI turns them into exit codes
(`talkative.errors.exit_code`).
"""

from __future__ import annotations

from typing import Any


class TalkativeError(Exception):
    """Base of the domain errors. `extra` travels into the problem document as members."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail, self.extra = detail, extra


class InvalidInput(TalkativeError):
    """The caller's input cannot be used as it is (a photo Pillow cannot read, a prompt
    with nothing the model can read, a length past what the model allows)."""

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra.setdefault("errors", [{"field": field, "message": detail}])
            detail = f"{field}: {detail}"
        super().__init__(detail, **extra)
        self.field = field


class NotFound(TalkativeError):
    """The caller named something that does not exist (a model, a stored story)."""


class Unavailable(TalkativeError):
    """A dependency (model, model server, another service, the store) cannot answer now;
    asking again after `retry_after_s` may succeed."""

    def __init__(self, detail: str, *, retry_after_s: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s


# The one mapping from domain errors to HTTP statuses (most specific class first).
STATUS: tuple[tuple[type[TalkativeError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Unavailable, 503),
)


def status_of(error: TalkativeError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500
