"""The gateway's JSON bodies (see DESIGN.md: POST /v1/stories and the pass-through routes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.validation import whole_numbers

MAX_SEED = 2**63 - 1
# Bounds are written `lt=SEED_LIMIT`, not `le=MAX_SEED`: FastAPI writes schema bounds as
# floats, which hold 2**63 exactly but round 2**63 - 1 up (the document would allow 2**63).
SEED_LIMIT = MAX_SEED + 1
MODEL_NAME = r"^[a-z0-9_.-]+$"

# The types and limits of the story options, declared once: StoryOptions and the form
# fields of POST /v1/stories (so its OpenAPI document shows them) both use them.
ModelName = Annotated[str, Field(min_length=1, max_length=100, pattern=MODEL_NAME)]
StoryLength = Annotated[int, Field(ge=1)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
Style = Literal["auto", "verse", "screenplay", "tale", "plain"]


class StoryOptions(BaseModel):
    """The form fields beside the image in POST /v1/stories."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = Field(None, description="text model")
    max_new_tokens: StoryLength | None = Field(
        None, description="length of the story in tokens (characters for char models)"
    )
    temperature: Temperature = Field(0.7, description="0 = greedy; higher = wilder")
    seed: Seed | None = Field(None, description="same seed, same story")
    style: Style = Field(
        "auto", description="how the caption is framed; auto follows the model's corpus"
    )


class GenerationRequest(BaseModel):
    """Checked here first so a bad body never leaves the gateway; textgen checks again."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(..., min_length=1, max_length=2000)
    model: str = Field("char_lstm_en", min_length=1, max_length=100, pattern=MODEL_NAME)
    max_new_tokens: int = Field(200, ge=1)
    temperature: float = Field(0.7, ge=0.0, le=2.0, allow_inf_nan=False)
    top_k: int = Field(0, ge=0, le=10_000)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT)
    _whole = whole_numbers("max_new_tokens", "top_k", "seed")


class SeedInfo(BaseModel):
    text: str = Field(description="what the text model was given to continue")
    style: str
    language: str
    translated: bool = Field(description="the caption was rendered in the model's language")


class StoryResponse(BaseModel):
    id: str
    caption: str
    seed: int = Field(description="the random seed: send it again for the same story")
    prompt: SeedInfo = Field(description="the seed text built from the caption")
    story: str
    model: str
    timings: dict[str, float] = Field(description="milliseconds per step")
    card_url: str
    alt_text: str = Field(description="a description of the card for screen readers")
    finish_reason: Literal["length", "stop", "sentence"]


class PublicCorpus(BaseModel):
    name: str = ""
    source: str = ""
    licence: str = ""


class PublicModel(BaseModel):
    """What the public may know of a model: no training paths, hashes or run settings."""

    name: str
    version: int
    kind: str
    language: str
    description: str
    parameters: int
    held_out_loss: dict[str, float] = Field(description="figures only, per the model card")
    max_new_tokens: int
    training_corpus: PublicCorpus
    licence: str = Field("", description="licence of the training data")

    @classmethod
    def from_textgen(cls, entry: dict[str, Any]) -> PublicModel:
        raw_card = entry.get("card")
        card: dict[str, Any] = raw_card if isinstance(raw_card, dict) else {}
        raw_corpus = card.get("training_corpus")
        corpus: dict[str, Any] = raw_corpus if isinstance(raw_corpus, dict) else {}
        return cls(
            name=str(entry["name"]),
            version=int(entry.get("version", 0)),
            kind=str(entry.get("kind", "")),
            language=str(entry.get("language", "")),
            description=str(entry.get("description", "")),
            parameters=int(entry.get("parameters", 0)),
            held_out_loss=dict(entry.get("held_out_loss") or {}),
            max_new_tokens=int(entry.get("max_new_tokens", 0)),
            training_corpus=PublicCorpus(
                **{k: str(corpus.get(k, "")) for k in ("name", "source", "licence")}
            ),
            licence=str(card.get("licence", "")),
        )


class PublicModelList(BaseModel):
    models: list[PublicModel]
    default: str
