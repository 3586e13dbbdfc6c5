"""One class per model family; FAMILIES maps a model card's `kind` to its class."""

from textgen_service.models.base import Generation, GenerationParams, TextModel
from textgen_service.models.char_lstm import CharLSTMModel
from textgen_service.models.gpt2 import GPT2Model

FAMILIES: dict[str, type[TextModel]] = {"char_lstm": CharLSTMModel, "gpt2": GPT2Model}

__all__ = ["FAMILIES", "CharLSTMModel", "GPT2Model", "Generation", "GenerationParams", "TextModel"]
