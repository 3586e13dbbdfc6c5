"""Character-level LSTM models (kind `char_lstm`): one id per character, no end token.

The alphabet is the vocabulary file of the instance's own version, read at construction.
"""

from __future__ import annotations

import json

from talkative_common.errors import InvalidInput
from textgen_service.alphabet import Alphabet, NormalisedPrompt
from textgen_service.models.base import Generation, GenerationParams, TextModel


class CharLSTMModel(TextModel):
    family = "char_lstm"
    tokenizer_kind = "characters"

    def load_assets(self) -> None:
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
        tokens = await self._generate(self.alphabet.encode(fitted.text), params)
        text = self.alphabet.decode(tokens)
        return Generation(text=text, tokens=len(tokens), finish_reason="length", prompt=fitted)

    async def warmup(self) -> None:
        sample = next((c for c in self.alphabet.chars if c.isalpha()), self.alphabet.chars[0])
        await self.generate(sample * 4, GenerationParams(8, 0.7, 0, 1.0, 0))
