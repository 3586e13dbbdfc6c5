"""Talkative's shared library: settings, errors, validation, logging, metrics, model clients."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_REPOSITORY = PROJECT_ROOT / "serving" / "models"
