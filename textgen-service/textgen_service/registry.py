"""The text models this service serves, loaded, verified and warmed up at start-up."""

from __future__ import annotations

import logging

from services.model_client import ModelClient, ModelRepository
from services.problems import Problem
from textgen_service.models import FAMILIES, TextModel
from textgen_service.settings import TextgenSettings

log = logging.getLogger("textgen.registry")


class TextModelRegistry:
    def __init__(self, models: dict[str, TextModel], default: str) -> None:
        self.models, self.default = models, default

    @classmethod
    async def load(
        cls, settings: TextgenSettings, client: ModelClient, repository: ModelRepository
    ) -> TextModelRegistry:
        requested = settings.models
        names = requested if requested is not None else repository.models()
        models: dict[str, TextModel] = {}
        for name in names:
            kind = repository.card(name).get("kind")
            family = FAMILIES.get(str(kind))
            if family is None:
                if requested is not None:
                    raise ValueError(f"model {name!r} is of kind {kind!r}, not a text model")
                continue  # e.g. the captioner, which shares the repository
            model = family(name, client, repository)
            await model.verify()
            await model.warmup()
            log.info(
                "serving %s v%d (%s)",
                name,
                model.version,
                kind,
                extra={"model": name, "version": model.version},
            )
            models[name] = model
        if not models:
            raise ValueError(f"no text model found in {repository.root}")
        default = settings.default_model if settings.default_model in models else sorted(models)[0]
        return cls(models, default)

    def get(self, name: str) -> TextModel:
        try:
            return self.models[name]
        except KeyError:
            raise Problem(
                404,
                f"Unknown model {name!r}; available: {', '.join(sorted(self.models))}.",
                title="Unknown model",
                errors=[{"field": "model", "message": "no such model"}],
            ) from None
