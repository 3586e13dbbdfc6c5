"""One class per model family; FAMILIES maps a model card's `kind` to its class."""

from textgen_service.models.base import Generation, GenerationParams, TextModel
from textgen_service.models.char_lstm import CharLSTMModel

FAMILIES: dict[str, type[TextModel]] = {"char_lstm": CharLSTMModel}

__all__ = ["FAMILIES", "CharLSTMModel", "Generation", "GenerationParams", "TextModel"]
