"""A valid POST /v1/generations body for textgen-service (the tiny char-LSTM's), and posting
a body with some of its fields changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

GOOD: dict[str, Any] = {
    "prompt": "And the king said",
    "model": "tiny_en",
    "max_new_tokens": 30,
    "temperature": 0.8,
    "top_k": 0,
    "top_p": 0.95,
    "seed": 42,
}


def post_generation(
    client: httpx.Client, good: Mapping[str, Any] = GOOD, **overrides: Any
) -> httpx.Response:
    """POST /v1/generations: the body `good` with `overrides` changed."""
    return client.post("/v1/generations", json={**good, **overrides})
