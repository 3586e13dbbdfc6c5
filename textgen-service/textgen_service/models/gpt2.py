"""GPT-2 models (kind `gpt2`): byte-level BPE in the service, decoding loop in the graph.

The tokenizer is the `assets.extra/tokenizer.json` (HF `tokenizers`) of the
instance's own version.
Byte-level BPE reads any text, so no character of a prompt is altered. A version
whose card has `sliding_window` slides its context in the graph, so any length up
to its card's cap works; the prompt keeps its last `context` tokens. In an older
version the prompt and the new tokens share the context window, so the longest
story offered (`max_new_tokens`, advertised in /v1/models) leaves a quarter of the
context, at most PROMPT_RESERVE tokens, for the prompt. Either way, within that
length a request never fails: a prompt too long for the room left keeps its last
tokens (the left is cut, like text-generation-inference's `truncate`), and the
response's `normalisation.prompt` says what was read. The graph stops a row at the
end token; fewer tokens than asked for means finish_reason "stop".
"""

from __future__ import annotations

from tokenizers import Tokenizer

from talkative_common.errors import InvalidInput
from textgen_service.alphabet import NormalisedPrompt
from textgen_service.models.base import Generation, GenerationParams, TextModel

# Context tokens kept for the prompt when advertising a length: a gateway prompt (a
# caption in a sentence or a scene heading) takes 10 to 40.
PROMPT_RESERVE = 64


class GPT2Model(TextModel):
    family = "gpt2"
    tokenizer_kind = "byte_level_bpe"

    def load_assets(self) -> None:
        info = self.card.get("tokenizer", {})
        path = self.repository.asset(self.name, info.get("file", "tokenizer.json"), self.version)
        self.tokenizer = Tokenizer.from_file(str(path))
        end = info.get("end_id")
        if end is None:
            end = self.tokenizer.token_to_id(info.get("end_token", "<|endoftext|>"))
        self.end_id = int(end) if end is not None else -1
        self.context = int(self.card.get("context", super().max_new_tokens + 1))
        self.sliding = "sliding_window" in self.card
        # A styled model read each training document as [end] <|style|> "\n" text: a
        # request with a style gets the same opening, outside the prompt it reports.
        self.style_ids: dict[str, int] = {}
        for style in self.styles:
            token = self.tokenizer.token_to_id(f"<|{style}|>")
            if token is None:
                raise ValueError(f"{self.name} v{self.version}: no token for style {style!r}")
            self.style_ids[style] = int(token)

    @property
    def max_new_tokens(self) -> int:
        """The longest story offered: the card's cap when the window slides, else what the
        context holds beside a reserved prompt."""
        if self.sliding:
            return super().max_new_tokens
        reserve = min(PROMPT_RESERVE, self.context // 4)
        return max(1, min(super().max_new_tokens, self.context - reserve))

    def normalise(self, prompt: str) -> NormalisedPrompt:
        if not prompt.strip():
            raise InvalidInput(
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
        if params.max_new_tokens > self.max_new_tokens:
            message = f"at most {self.max_new_tokens} for {self.name}" + (
                "" if self.sliding else f" (its context is {self.context} tokens, prompt included)"
            )
            raise InvalidInput(
                f"max_new_tokens: {message}; got {params.max_new_tokens}.",
                errors=[{"field": "max_new_tokens", "message": message}],
            )
        fitted = self.normalise(prompt)
        opening = self.opening(params.style)
        ids = self.encode(fitted.text)
        room = self.context if self.sliding else self.context - params.max_new_tokens
        room -= len(opening)
        if len(ids) > room:
            ids = ids[-room:]  # an offered length never fails: keep the prompt's end
            fitted = NormalisedPrompt(self.decode(ids).lstrip("\ufffd"), {})
        ids = [*opening, *ids]
        tokens = await self._generate(ids, params)
        length = len(tokens)
        finish = "stop" if length < params.max_new_tokens else "length"
        return Generation(
            text=self.decode(tokens), tokens=length, finish_reason=finish, prompt=fitted
        )

    def opening(self, style: str | None) -> list[int]:
        """The tokens before a styled request's prompt, as each training document began:
        the end token that separated it from the one before, its style token, a newline.
        (The byte-level pre-tokenizer keeps a newline apart from the text after it, so
        encoding the two apart gives the tokens the corpus had.)"""
        if style is None:
            return []
        end = [self.end_id] if self.end_id >= 0 else []
        return [*end, self.style_ids[style], *self.encode("\n")]

    async def warmup(self) -> None:
        options = self.generation_options  # with the controls on, when offered
        await self.generate(
            "The",
            GenerationParams(
                4,
                0.7,
                40,
                0.9,
                0,
                options.get("repetition_penalty", {}).get("default", 1.0),
                int(options.get("no_repeat_ngram_size", {}).get("default", 0)),
            ),
        )
