"""The captions contract: caption-service's POST /v1/captions, which the gateway passes
through, so both declare it from here (one schema per concept, like generation_schema)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from pydantic import BaseModel, Field

# The widest beam a request may ask for: the search's cost grows with it, and past ten the
# extra captions are rephrasings of the first ones.
MAX_BEAM_SIZE = 10

# The optional form field beside the photo.
BeamSize = Annotated[
    int | None,
    Form(
        ge=1,
        le=MAX_BEAM_SIZE,
        description="beam width: how many captions are searched and returned, 1 (greedy) "
        f"to {MAX_BEAM_SIZE}; default: the width the captioner was exported with (its "
        "model card's `beam_size`, 3 for the default captioner)",
    ),
]


class Caption(BaseModel):
    text: str = Field(description="the caption, lower case, punctuation attached")
    log_prob: float = Field(description="natural log-probability of the caption under the model")


class CaptionResponse(BaseModel):
    captions: list[Caption] = Field(description="ranked, best first (the model's beam)")
    model: str
    version: int
