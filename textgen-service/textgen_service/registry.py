"""The text models this service serves: one followed version per model name.

Each name resolves to the version the model server serves (the label's target, or
the newest served; in-process: the newest on disk). That version's card says which
family the model is; its vocabulary or tokenizer is loaded, the graph is checked
against the contract and warmed up before it takes traffic. When the label moves,
the new version is built the same way and swapped in (talkative_common.model_client.followed);
`get(name)` returns the instance serving now, which a request keeps to its end.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from talkative_common.errors import NotFound
from talkative_common.model_client import (
    FollowedVersion,
    ModelClient,
    ModelNotFound,
    ModelRepository,
    version_poll_interval,
)
from textgen_service.models import FAMILIES, TextModel
from textgen_service.settings import TextgenSettings

log = logging.getLogger("textgen.registry")


class NotATextModel(ValueError):
    """The served version's card names a kind no text model family handles."""


def _construct(
    name: str, version: int, client: ModelClient, repository: ModelRepository
) -> TextModel:
    kind = repository.card(name, version).get("kind")
    family = FAMILIES.get(str(kind))
    if family is None:
        raise NotATextModel(f"model {name!r} v{version} is of kind {kind!r}, not a text model")
    return family(name, client, repository, version=version)


async def _build(
    name: str, client: ModelClient, repository: ModelRepository, version: int
) -> TextModel:
    # Card, vocabulary and tokenizer are file reads: off the event loop, since a
    # switch happens while requests are being served.
    model = await asyncio.to_thread(_construct, name, version, client, repository)
    await model.verify()
    await model.warmup()
    return model


class TextModelRegistry:
    def __init__(self, slots: dict[str, FollowedVersion[TextModel]], default: str) -> None:
        self.slots, self.default = slots, default

    @property
    def models(self) -> dict[str, TextModel]:
        """The instance serving each name now (a snapshot)."""
        return {name: slot.current for name, slot in self.slots.items()}

    @classmethod
    async def load(
        cls, settings: TextgenSettings, client: ModelClient, repository: ModelRepository
    ) -> TextModelRegistry:
        """Build every model's served version; follow label moves unless the version is fixed.

        Call `close()` when done, to stop following.
        """
        requested = settings.models
        names = requested if requested is not None else repository.models()
        poll_s = version_poll_interval(settings, client)
        slots: dict[str, FollowedVersion[TextModel]] = {}
        try:
            for name in names:
                slot = FollowedVersion(
                    name, client, partial(_build, name, client, repository), poll_s=poll_s
                )
                try:
                    await slot.start()
                except NotATextModel:
                    if requested is not None:
                        raise
                    continue  # e.g. the captioner, which shares the repository
                except ModelNotFound as exc:
                    if requested is not None:
                        raise
                    # A model folder copied onto the host before models.config lists it:
                    # the model server does not serve it yet, which is no reason to crash.
                    log.warning("not serving %s: %s", name, exc, extra={"model": name})
                    continue
                slots[name] = slot
        except BaseException:
            await asyncio.gather(*(slot.close() for slot in slots.values()))
            raise
        if not slots:
            raise ValueError(f"no text model found in {repository.root}")
        default = settings.default_model if settings.default_model in slots else sorted(slots)[0]
        return cls(slots, default)

    def get(self, name: str | None) -> TextModel:
        """The instance serving `name` (None: the default) now: take it once per request
        and use only it."""
        name = name or self.default
        try:
            return self.slots[name].current
        except KeyError:
            raise NotFound(
                f"Unknown model {name!r}; available: {', '.join(sorted(self.slots))}.",
                title="Unknown model",
                errors=[{"field": "model", "message": "no such model"}],
            ) from None

    async def close(self) -> None:
        """Stop following label moves."""
        await asyncio.gather(*(slot.close() for slot in self.slots.values()))
