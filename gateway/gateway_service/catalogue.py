"""The text models textgen-service serves, and the characters each of them knows.

/v1/models gives each model's language and corpus. The alphabet of a character
model is learnt by asking it, once, to read PROBE_CHARS with one new token:
textgen-service answers with the characters it had to replace, and the rest are
the ones the model knows. A byte-level model reads every character (alphabet None).
Results are kept `models_cache_s` seconds, so a model added or retrained behind
textgen-service is noticed without restarting the gateway.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway_service.clients import TextgenClient
from gateway_service.seeds import PROBE_CHARS, ModelProfile, profile_from_model
from services.problems import Problem

BYTE_LEVEL = ("gpt2",)  # model kinds whose tokenizer reads any character


class ModelCatalogue:
    def __init__(self, client: TextgenClient, cache_s: float) -> None:
        self.client, self.cache_s = client, cache_s
        self._listing: dict[str, Any] | None = None
        self._fetched = 0.0
        self._alphabets: dict[tuple[str, int], frozenset[str] | None] = {}
        self._lock = asyncio.Lock()

    async def listing(self) -> dict[str, Any]:
        async with self._lock:
            stale = time.monotonic() - self._fetched > self.cache_s
            if self._listing is None or stale:
                self._listing = await self.client.models()
                self._fetched = time.monotonic()
            return self._listing

    async def info(self, name: str | None) -> dict[str, Any]:
        """The /v1/models entry of `name` (default: textgen's default), or a 404 Problem."""
        listing = await self.listing()
        name = name or str(listing.get("default"))
        models = {str(m["name"]): m for m in listing.get("models", [])}
        if name not in models:
            raise Problem(
                404,
                f"Unknown model {name!r}; available: {', '.join(sorted(models)) or 'none'}.",
                title="Unknown model",
                errors=[{"field": "model", "message": "no such model"}],
            )
        return models[name]

    async def profile(self, name: str | None) -> ModelProfile:
        info = await self.info(name)
        return profile_from_model(info, await self._alphabet(info))

    async def _alphabet(self, info: dict[str, Any]) -> frozenset[str] | None:
        key = (str(info["name"]), int(info.get("version", 0)))
        if key not in self._alphabets:
            declared = info.get("alphabet") or (info.get("card") or {}).get("alphabet")
            if isinstance(declared, list):
                self._alphabets[key] = frozenset(str(c) for c in declared)
            elif info.get("kind") in BYTE_LEVEL:
                self._alphabets[key] = None
            else:
                answer = await self.client.generate(
                    {
                        "prompt": PROBE_CHARS,
                        "model": key[0],
                        "max_new_tokens": 1,
                        "temperature": 0.0,
                        "seed": 0,
                    }
                )
                replaced = set(answer.get("normalisation", {}).get("replaced", {}))
                known = frozenset(c for c in PROBE_CHARS if c not in replaced)
                self._alphabets[key] = known
        return self._alphabets[key]
