"""The gateway's JSON bodies (see DESIGN.md: POST /v1/stories and the pass-through routes).

The pass-through POST /v1/generations speaks textgen-service's contract, defined once in
talkative_common/generation_schema.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from talkative_common.generation_schema import MAX_NGRAM_SIZE, MODEL_NAME, SEED_LIMIT, ModelInfo

# The types and limits of the story options, declared once: StoryOptions and the form
# fields of POST /v1/stories (so its OpenAPI document shows them) both use them.
ModelName = Annotated[str, Field(min_length=1, max_length=100, pattern=MODEL_NAME)]
StoryLength = Annotated[int, Field(ge=1)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
RngSeed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
# Passed through to textgen-service as they are (GenerationRequest has their meaning).
RepetitionPenalty = Annotated[float, Field(ge=1.0, le=2.0, allow_inf_nan=False)]
NoRepeatNgramSize = Annotated[int, Field(ge=0, le=MAX_NGRAM_SIZE)]
REPETITION_HELP = "1 = off; omitted: the model's default (generation_options in /v1/models)"
NGRAM_HELP = "never repeat n tokens; 0 = off; omitted: the model's default"
# Which styles a model takes depends on the model (its genres, when it lists any), so
# the form only checks the shape here; the story step checks the name against the model.
Style = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
STYLE_HELP = (
    "how the caption is framed: auto, verse, screenplay, tale or plain; for a model that "
    "lists `styles` in /v1/models, auto, one of those genres or plain (auto = the first)"
)


class StoryOptions(BaseModel):
    """The form fields beside the image in POST /v1/stories."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = Field(None, description="text model")
    max_new_tokens: StoryLength | None = Field(
        None, description="length of the story in tokens (characters for char models)"
    )
    temperature: Temperature = Field(0.7, description="0 = greedy; higher = wilder")
    # The random seed (rng_seed in the code); `seed` is the public form field's name.
    seed: RngSeed | None = Field(None, description="same seed, same story")
    style: Style = Field("auto", description=STYLE_HELP)
    repetition_penalty: RepetitionPenalty | None = Field(None, description=REPETITION_HELP)
    no_repeat_ngram_size: NoRepeatNgramSize | None = Field(None, description=NGRAM_HELP)


class PromptInfo(BaseModel):
    text: str = Field(
        description="what the text model read: the framed caption as textgen-service "
        "fitted it to the model"
    )
    style: str
    language: str
    translated: bool = Field(description="the caption was rendered in the model's language")


class StoryResponse(BaseModel):
    id: str
    caption: str
    # Public names, the documented contract: `seed` is the random seed (rng_seed in the
    # code) and `prompt` the opening text built from the caption.
    seed: int = Field(description="the random seed: send it again for the same story")
    prompt: PromptInfo = Field(description="the opening text built from the caption")
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
    styles: list[str] = Field(
        [],
        description="the genres the model was trained with (its styles besides auto and "
        "plain); empty for a model without style tokens",
    )
    training_corpus: PublicCorpus
    licence: str = Field("", description="licence of the training data")

    @classmethod
    def from_textgen(cls, entry: ModelInfo) -> PublicModel:
        """The public part of textgen-service's listing: the fields of the same name in both
        schemas, the card's licence and the public facts of the training corpus."""
        card = entry.card
        raw_corpus = card.get("training_corpus")
        corpus: dict[str, Any] = raw_corpus if isinstance(raw_corpus, dict) else {}
        return cls(
            **entry.model_dump(include=set(cls.model_fields) & set(ModelInfo.model_fields)),
            training_corpus=PublicCorpus(
                **{k: str(corpus.get(k, "")) for k in ("name", "source", "licence")}
            ),
            licence=str(card.get("licence", "")),
        )


class PublicModelList(BaseModel):
    models: list[PublicModel]
    default: str
