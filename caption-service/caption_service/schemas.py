"""caption-service response bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

# The widest beam a request may ask for: the search's cost grows with it, and past ten the
# extra captions are rephrasings of the first ones.
MAX_BEAM_SIZE = 10


class Caption(BaseModel):
    text: str = Field(description="the caption, lower case, punctuation attached")
    log_prob: float = Field(description="natural log-probability of the caption under the model")


class CaptionResponse(BaseModel):
    captions: list[Caption] = Field(description="ranked, best first (the model's beam)")
    model: str
    version: int
