"""textgen-service's API contract, shared by the service and its clients (the gateway).

One definition per concept: the generation request and answer, and the model listing
(DESIGN.md: POST /v1/generations, GET /v1/models). The limits here are the ones that
hold everywhere; a service adds its settings-driven caps (prompt length, story length)
in its own code and writes them into its OpenAPI document
(`talkative_common.openapi.limit_request_fields`).

Naming: in these public bodies `seed` is the random seed (called `rng_seed` inside the
code) and `prompt` is the text to continue; both names are the documented contract.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from talkative_common.validation import whole_numbers

MAX_SEED = 2**63 - 1
# Bounds are written `lt=SEED_LIMIT`, not `le=MAX_SEED`: FastAPI writes schema bounds as
# floats, which hold 2**63 exactly but round 2**63 - 1 up (the document would allow 2**63).
SEED_LIMIT = MAX_SEED + 1
MODEL_NAME = r"^[a-z0-9_.-]+$"

# How a model reads a prompt: "characters" knows only the characters of its `alphabet`
# (textgen-service fits the rest); "byte_level_bpe" reads any text as it is.
TokenizerKind = Literal["characters", "byte_level_bpe"]

# The repetition controls and the value that turns each off. Only models whose card
# offers the `generate_controlled` signature apply them; for the others an omitted
# control is off and any other value is refused (422), so their stories never change.
REPETITION_CONTROLS_OFF: dict[str, float | int] = {
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
}
MAX_NGRAM_SIZE = 16  # = training.sampling.MAX_NGRAM_SIZE, the graph's own bound


class GenerationRequest(BaseModel):
    # strict: "5" is not a number and "true" is not a float; extra fields are typos.
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(
        ...,
        min_length=1,
        description="the text to continue, as written: textgen-service fits it to the "
        "model's alphabet and the answer's `normalisation.prompt` says what was read",
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=MODEL_NAME,
        description="a served model (GET /v1/models); omitted: the service's default model",
    )
    max_new_tokens: int = Field(
        200, ge=1, description="tokens (characters for char models) to generate"
    )
    temperature: float = Field(
        0.7, ge=0.0, le=2.0, allow_inf_nan=False, description="0 = greedy; higher = more surprising"
    )
    top_k: int = Field(
        0, ge=0, le=10_000, description="sample among the k likeliest tokens; 0 = off"
    )
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, allow_inf_nan=False, description="nucleus sampling mass; 1 = off"
    )
    # The random seed (rng_seed in the code); the public name is the contract.
    seed: int | None = Field(
        None, ge=0, lt=SEED_LIMIT, description="same seed, same text; omitted = random"
    )
    style: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="the genre to write in, one of the model's `styles` in /v1/models (its "
        "style token opens the text the model reads); omitted: no style token",
    )
    repetition_penalty: float | None = Field(
        None,
        ge=1.0,
        le=2.0,
        allow_inf_nan=False,
        description="CTRL repetition penalty on every token already in the prompt or the "
        "text: 1 = off; omitted: the model's default (`generation_options` in /v1/models: "
        "1.1 for GPT-2 exports that offer it, off for models that do not, which refuse "
        "any other value)",
    )
    no_repeat_ngram_size: int | None = Field(
        None,
        ge=0,
        le=MAX_NGRAM_SIZE,
        description="n > 0: never repeat an n-token sequence of the prompt or the text; "
        "0 = off; omitted: the model's default (`generation_options` in /v1/models: 4 for "
        "GPT-2 exports that offer it, off for models that do not, which refuse any other "
        "value)",
    )
    _whole = whole_numbers("max_new_tokens", "top_k", "seed", "no_repeat_ngram_size")


class Normalisation(BaseModel):
    changed: bool = Field(description="whether the prompt was altered to fit the model")
    prompt: str = Field(
        description="the prompt the model actually read: fitted to a char model's alphabet, "
        "or, for a byte-level model, its end when the whole prompt does not fit the context"
    )
    replaced: dict[str, str] = Field(description="characters the model never saw -> what was used")


class GenerationResponse(BaseModel):
    text: str = Field(description="the new text only; it continues `normalisation.prompt`")
    model: str
    version: int = Field(description="the model version that generated the text")
    tokens: int
    finish_reason: Literal["length", "stop"]
    seed: int = Field(description="the random seed used: send it again for the same text")
    normalisation: Normalisation


class ModelInfo(BaseModel):
    name: str
    version: int = Field(description="the version serving now; it changes when its label moves")
    kind: str
    language: str
    description: str
    parameters: int
    held_out_loss: dict[str, float]
    max_new_tokens: int = Field(
        description="the longest story this service generates with this model, whatever "
        "the prompt (within the prompt limit)"
    )
    generation_options: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="the repetition controls the model offers (repetition_penalty, "
        "no_repeat_ngram_size), each with its default, minimum, maximum and the value "
        "that turns it off; empty: none, and a request may only send the off values",
    )
    tokenizer: TokenizerKind = Field(
        description="characters: reads only `alphabet` (a prompt is fitted to it); "
        "byte_level_bpe: reads any text as it is"
    )
    alphabet: list[str] | None = Field(
        description="the characters a `characters` model knows, in vocabulary order; "
        "null for a model that reads any character"
    )
    card: dict[str, Any]
    styles: list[str] = Field(
        [],
        description="the genres the model was trained with, each a style token a generation "
        "request may name in `style`; empty for a model without style tokens",
    )


class ModelList(BaseModel):
    models: list[ModelInfo]
    default: str
