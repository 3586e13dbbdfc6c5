"""The JSON bodies of textgen-service (see DESIGN.md: POST /v1/generations, GET /v1/models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.validation import whole_numbers

MAX_SEED = 2**63 - 1
# Bounds are written `lt=SEED_LIMIT`, not `le=MAX_SEED`: FastAPI writes schema bounds as
# floats, which hold 2**63 exactly but round 2**63 - 1 up (the document would allow 2**63).
SEED_LIMIT = MAX_SEED + 1


class GenerationRequest(BaseModel):
    # strict: "5" is not a number and "true" is not a float; extra fields are typos.
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(
        ..., min_length=1, description="the seed text; normalised to the model's alphabet"
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[a-z0-9_.-]+$",
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
    seed: int | None = Field(
        None, ge=0, lt=SEED_LIMIT, description="same seed, same text; omitted = random"
    )
    _whole = whole_numbers("max_new_tokens", "top_k", "seed")


class Normalisation(BaseModel):
    changed: bool = Field(description="whether the prompt was altered to fit the model's alphabet")
    prompt: str = Field(description="the prompt the model actually read")
    replaced: dict[str, str] = Field(description="characters the model never saw -> what was used")


class GenerationResponse(BaseModel):
    text: str
    model: str
    version: int = Field(description="the model version that generated the text")
    tokens: int
    finish_reason: Literal["length", "stop"]
    seed: int
    normalisation: Normalisation


class ModelInfo(BaseModel):
    name: str
    version: int = Field(description="the version serving now; it changes when its label moves")
    kind: str
    language: str
    description: str
    parameters: int
    held_out_loss: dict[str, float]
    max_new_tokens: int
    card: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]
    default: str
