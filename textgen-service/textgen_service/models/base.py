"""What every text model family offers the service: verify, warm up, generate, describe.

One instance is one version of one model: its card and vocabulary come from that
version's directory and every call names that version, so a request never mixes
versions. The registry builds a new instance when the served version moves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from talkative_common.errors import Unavailable
from talkative_common.generation_schema import TokenizerKind
from talkative_common.model_client import (
    GENERATE,
    GENERATE_CONTROLLED,
    ModelClient,
    ModelNotFound,
    ModelRepository,
    ModelUnavailable,
)
from textgen_service.alphabet import NormalisedPrompt


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    rng_seed: int  # the request's `seed`: same seed, same text
    # The repetition controls (off by default); only models with generate_controlled.
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    style: str | None = None  # one of the model's `styles` (checked before the call)


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int
    finish_reason: str
    prompt: NormalisedPrompt


class TextModel(ABC):
    family: ClassVar[str]
    tokenizer_kind: ClassVar[TokenizerKind]  # published in /v1/models, so clients need not guess

    def __init__(
        self, name: str, client: ModelClient, repository: ModelRepository, *, version: int
    ) -> None:
        """Read `version`'s card, then what it names (`load_assets`): blocking file reads."""
        self.name, self.client, self.repository = name, client, repository
        self.version = version
        self.card: dict[str, Any] = repository.card(name, version)
        self.load_assets()

    @abstractmethod
    def load_assets(self) -> None:
        """Read the version's tokenizer or alphabet (and any setting of its card) once."""

    @property
    def max_new_tokens(self) -> int:
        return int(self.card.get("max_new_tokens_cap", 4096))

    @property
    def controlled(self) -> bool:
        """Whether the version offers the repetition controls (`generate_controlled`)."""
        return GENERATE_CONTROLLED.name in self.card.get("signatures", [])

    @property
    def generation_options(self) -> dict[str, dict[str, float]]:
        """The repetition controls the card offers, with default, range and off value."""
        if not self.controlled:
            return {}
        options = self.card.get("generation_options", {})
        return {k: {f: float(v) for f, v in o.items()} for k, o in options.items()}

    @property
    def styles(self) -> list[str]:
        """The genres the model was trained with (a style token each); none for most."""
        return [str(s) for s in self.card.get("styles", [])]

    @property
    def language(self) -> str:
        return str(self.card.get("language", "und"))

    @property
    def alphabet_chars(self) -> list[str] | None:
        """The characters the model reads (published in /v1/models); None: any."""
        return None

    async def verify(self) -> None:
        """Refuse to serve a model whose graph does not meet the `generate` contract (and
        `generate_controlled`'s, when its card offers it)."""
        for contract in (GENERATE, GENERATE_CONTROLLED) if self.controlled else (GENERATE,):
            contract.check(
                self.name, await self.client.signature(self.name, contract.name, self.version)
            )

    @abstractmethod
    def normalise(self, prompt: str) -> NormalisedPrompt:
        """Fit a prompt to what the model can read; raise InvalidInput if nothing is left.

        The one owner of the fitting rules: clients send prompts as written."""

    @abstractmethod
    async def generate(self, prompt: str, params: GenerationParams) -> Generation: ...

    @abstractmethod
    async def warmup(self) -> None:
        """Run one small request so the first user does not pay for graph tracing."""

    async def _generate(self, ids: Sequence[int], params: GenerationParams) -> list[int]:
        """The new token ids after the prompt `ids`: one row through the `generate` signature,
        or `generate_controlled` when the version offers it (1.0 and 0 turn the controls
        off, so its defaults decide)."""
        inputs: dict[str, np.ndarray] = {
            "prompt_ids": np.asarray([ids], dtype=np.int32),
            "prompt_lengths": np.asarray([len(ids)], np.int32),
            "max_new_tokens": np.asarray([params.max_new_tokens], np.int32),
            "temperature": np.asarray([params.temperature], np.float32),
            "top_k": np.asarray([params.top_k], np.int32),
            "top_p": np.asarray([params.top_p], np.float32),
            "seed": np.asarray([params.rng_seed], np.int64),
        }
        signature = GENERATE.name
        if self.controlled:
            signature = GENERATE_CONTROLLED.name
            inputs["repetition_penalty"] = np.asarray([params.repetition_penalty], np.float32)
            inputs["no_repeat_ngram_size"] = np.asarray([params.no_repeat_ngram_size], np.int32)
        try:
            out = await self.client.predict(
                self.name, inputs, signature=signature, version=self.version
            )
        except (ModelUnavailable, ModelNotFound) as exc:
            raise Unavailable(f"the text model {self.name!r} is unavailable: {exc}") from exc
        length = int(out["lengths"][0])
        return [int(i) for i in out["token_ids"][0, :length]]
