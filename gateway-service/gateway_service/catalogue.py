"""The text models textgen-service serves, as its /v1/models lists them.

Each entry says the model's language, corpus, story length and how it reads a prompt
(`tokenizer`, and `alphabet` for a character model): textgen-service owns that and
fits prompts itself, so the gateway only reads the listing. It is kept
`models_cache_s` seconds, so a model added or retrained behind textgen-service is
noticed without restarting the gateway.
"""

from __future__ import annotations

import asyncio
import time

from gateway_service.clients import TextgenClient
from gateway_service.prompts import ModelProfile, profile_from_model
from talkative_common.errors import NotFound
from talkative_common.generation_schema import ModelInfo, ModelList


class ModelCatalogue:
    def __init__(self, client: TextgenClient, cache_s: float) -> None:
        self.client, self.cache_s = client, cache_s
        self._listing: ModelList | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def listing(self) -> ModelList:
        async with self._lock:
            stale = time.monotonic() - self._fetched > self.cache_s
            if self._listing is None or stale:
                self._listing = ModelList.model_validate(await self.client.models())
                self._fetched = time.monotonic()
            return self._listing

    async def info(self, name: str | None) -> ModelInfo:
        """The /v1/models entry of `name` (default: textgen's default), or NotFound."""
        listing = await self.listing()
        name = name or listing.default
        models = {m.name: m for m in listing.models}
        if name not in models:
            raise NotFound(
                f"Unknown model {name!r}; available: {', '.join(sorted(models)) or 'none'}.",
                title="Unknown model",  # the problem document's title, as textgen's
                errors=[{"field": "model", "message": "no such model"}],
            )
        return models[name]

    async def profile(self, name: str | None) -> ModelProfile:
        return profile_from_model(await self.info(name))
