"""GPT-2 models (kind `gpt2`): byte-level BPE in the service, decoding loop in the graph.

The tokenizer is the `assets.extra/tokenizer.json` (HF `tokenizers`) of the
instance's own version.
Byte-level BPE reads any text, so a prompt is never altered; it only has to fit
the context with the tokens asked for, as in text-generation-inference, otherwise
the caller gets a 422 that says how many tokens each side took. The graph stops
a row at the end token; fewer tokens than asked for means finish_reason "stop".
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from services.model_client import ModelClient, ModelRepository
from services.problems import Problem
from textgen_service.alphabet import NormalisedPrompt
from textgen_service.models.base import Generation, GenerationParams, TextModel


class GPT2Model(TextModel):
    family = "gpt2"

    def __init__(
        self, name: str, client: ModelClient, repository: ModelRepository, *, version: int
    ) -> None:
        super().__init__(name, client, repository, version=version)
        info = self.card.get("tokenizer", {})
        path = self.repository.asset(self.name, info.get("file", "tokenizer.json"), self.version)
        self.tokenizer = Tokenizer.from_file(str(path))
        end = info.get("end_id")
        if end is None:
            end = self.tokenizer.token_to_id(info.get("end_token", "<|endoftext|>"))
        self.end_id = int(end) if end is not None else -1
        self.context = int(self.card.get("context", self.max_new_tokens + 1))

    def normalise(self, prompt: str) -> NormalisedPrompt:
        if not prompt.strip():
            raise Problem(
                422,
                "The prompt is only white space; give the model some text to continue.",
                errors=[{"field": "prompt", "message": "only white space"}],
            )
        return NormalisedPrompt(prompt, {})  # byte-level BPE reads every character as it is

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        # A sample cut at the length limit may end inside a multi-byte character.
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).rstrip("\ufffd")

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        fitted = self.normalise(prompt)
        ids = self.encode(fitted.text)
        if len(ids) + params.max_new_tokens > self.context:
            message = (
                f"prompt tokens + max_new_tokens must be at most {self.context} for {self.name} "
                f"(got {len(ids)} prompt tokens and {params.max_new_tokens} new tokens)"
            )
            raise Problem(
                422,
                message + "; shorten the prompt or ask for fewer tokens.",
                errors=[{"field": "max_new_tokens", "message": message}],
            )
        out = await self._call(
            {
                "prompt_ids": np.asarray([ids], dtype=np.int32),
                "prompt_lengths": np.asarray([len(ids)], np.int32),
                "max_new_tokens": np.asarray([params.max_new_tokens], np.int32),
                "temperature": np.asarray([params.temperature], np.float32),
                "top_k": np.asarray([params.top_k], np.int32),
                "top_p": np.asarray([params.top_p], np.float32),
                "seed": np.asarray([params.seed], np.int64),
            }
        )
        length = int(out["lengths"][0])
        tokens = [int(i) for i in out["token_ids"][0, :length]]
        finish = "stop" if length < params.max_new_tokens else "length"
        return Generation(
            text=self.decode(tokens), tokens=length, finish_reason=finish, prompt=fitted
        )

    async def warmup(self) -> None:
        await self.generate("The", GenerationParams(4, 0.7, 40, 0.9, 0))
