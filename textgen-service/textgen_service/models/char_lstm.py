"""Character-level LSTM models (kind `char_lstm`): one id per character, no end token.

The alphabet is the vocabulary file of the instance's own version, read at construction.
"""

from __future__ import annotations

import json

import numpy as np

from talkative_common.errors import InvalidInput
from talkative_common.model_client import ModelClient, ModelRepository
from textgen_service.alphabet import Alphabet, NormalisedPrompt
from textgen_service.models.base import Generation, GenerationParams, TextModel


class CharLSTMModel(TextModel):
    family = "char_lstm"
    tokenizer_kind = "characters"

    def __init__(
        self, name: str, client: ModelClient, repository: ModelRepository, *, version: int
    ) -> None:
        super().__init__(name, client, repository, version=version)
        vocab_file = self.card.get("tokenizer", {}).get("file", "vocab.json")
        chars = json.loads(
            self.repository.asset(self.name, vocab_file, self.version).read_text(encoding="utf-8")
        )["chars"]
        self.alphabet = Alphabet(chars)

    @property
    def alphabet_chars(self) -> list[str]:
        return list(self.alphabet.chars)

    def normalise(self, prompt: str) -> NormalisedPrompt:
        fitted = self.alphabet.normalise(prompt)
        if not fitted.text.strip():
            raise InvalidInput(
                f"The prompt has no character that {self.name} knows; "
                "write it in the model's language and alphabet.",
                errors=[{"field": "prompt", "message": "nothing left after normalisation"}],
            )
        return fitted

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        fitted = self.normalise(prompt)
        ids = np.asarray([self.alphabet.encode(fitted.text)], dtype=np.int32)
        out = await self._call(
            {
                "prompt_ids": ids,
                "prompt_lengths": np.asarray([ids.shape[1]], np.int32),
                "max_new_tokens": np.asarray([params.max_new_tokens], np.int32),
                "temperature": np.asarray([params.temperature], np.float32),
                "top_k": np.asarray([params.top_k], np.int32),
                "top_p": np.asarray([params.top_p], np.float32),
                "seed": np.asarray([params.rng_seed], np.int64),
            }
        )
        length = int(out["lengths"][0])
        text = self.alphabet.decode([int(i) for i in out["token_ids"][0, :length]])
        return Generation(text=text, tokens=length, finish_reason="length", prompt=fitted)

    async def warmup(self) -> None:
        sample = next((c for c in self.alphabet.chars if c.isalpha()), self.alphabet.chars[0])
        await self.generate(sample * 4, GenerationParams(8, 0.7, 0, 1.0, 0))
