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
    def language(self) -> str:
        return str(self.card.get("language", "und"))

    @property
    def alphabet_chars(self) -> list[str] | None:
        """The characters the model reads (published in /v1/models); None: any."""
        return None

    async def verify(self) -> None:
        """Refuse to serve a model whose graph does not meet the `generate` contract."""
        GENERATE.check(
            self.name, await self.client.signature(self.name, GENERATE.name, self.version)
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
        """The new token ids after the prompt `ids`: one row through the `generate` signature."""
        inputs: dict[str, np.ndarray] = {
            "prompt_ids": np.asarray([ids], dtype=np.int32),
            "prompt_lengths": np.asarray([len(ids)], np.int32),
            "max_new_tokens": np.asarray([params.max_new_tokens], np.int32),
            "temperature": np.asarray([params.temperature], np.float32),
            "top_k": np.asarray([params.top_k], np.int32),
            "top_p": np.asarray([params.top_p], np.float32),
            "seed": np.asarray([params.rng_seed], np.int64),
        }
        try:
            out = await self.client.predict(
                self.name, inputs, signature=GENERATE.name, version=self.version
            )
        except (ModelUnavailable, ModelNotFound) as exc:
            raise Unavailable(f"the text model {self.name!r} is unavailable: {exc}") from exc
        length = int(out["lengths"][0])
        return [int(i) for i in out["token_ids"][0, :length]]
