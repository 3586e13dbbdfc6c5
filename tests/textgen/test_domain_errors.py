"""Domain errors in the domain, HTTP at the edge: textgen-service's models, registry and
generation use case raise talkative_common.errors; only the routes may speak in statuses."""

from __future__ import annotations

from pathlib import Path

import textgen_service

PACKAGE = Path(textgen_service.__file__).parent


def test_only_the_http_edge_raises_problems() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "api":
            continue
        source = path.read_text(encoding="utf-8")
        assert "Problem" not in source and "talkative_common.problems" not in source, path.name
