"""The JSON bodies of textgen-service: its contract lives in the shared library
(talkative_common/generation_schema.py), because the gateway speaks it too; re-exported here."""

from talkative_common.generation_schema import (
    MAX_SEED,
    SEED_LIMIT,
    GenerationRequest,
    GenerationResponse,
    ModelInfo,
    ModelList,
    Normalisation,
    TokenizerKind,
)

__all__ = [
    "MAX_SEED",
    "SEED_LIMIT",
    "GenerationRequest",
    "GenerationResponse",
    "ModelInfo",
    "ModelList",
    "Normalisation",
    "TokenizerKind",
]
