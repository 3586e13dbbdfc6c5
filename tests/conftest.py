"""Fixtures shared by the whole suite: the real model repository and a tiny trained char-LSTM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "serving" / "models"
CORPORA = ROOT / "data" / "corpora"

TINY_TEXT = (
    "In the beginning was the word, and the word was with the king.\n"
    "And the king said unto the people, Go ye and sow the field.\n"
    "Et le roi dit: Allez, semez le champ; voilà l'été.\n"
)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("corpus")
    (corpus / "train.txt").write_text(TINY_TEXT * 40, encoding="utf-8")
    (corpus / "valid.txt").write_text(TINY_TEXT * 4, encoding="utf-8")
    (corpus / "manifest.json").write_text(
        '{"name": "tiny", "source": "test text", "licence": "CC0", "split_rule": "copy",'
        ' "files": {"train.txt": {"chars": 1, "sha256": "x"}, "valid.txt": {"chars": 1}},'
        ' "documents": {"valid": ["all"]}}',
        encoding="utf-8",
    )
    return corpus


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.char_lstm.train import TrainConfig, train

    run = tmp_path_factory.mktemp("run")
    train(
        TrainConfig(
            corpus=tiny_corpus,
            run_dir=run,
            units=24,
            embed_dim=8,
            batch_size=4,
            seq_len=16,
            steps=6,
            eval_every=3,
            eval_streams=2,
            warmup_steps=2,
            threads=1,
        )
    )
    return run


@pytest.fixture(scope="session")
def tiny_repository(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding one tiny exported char-LSTM, `tiny_en` version 1."""
    from training.char_lstm.export import export_run

    repo = tmp_path_factory.mktemp("models")
    export_run(tiny_run, repo / "tiny_en" / "1", name="tiny_en", language="en")
    return repo


def default_model(name: str) -> Path:
    path = MODELS / name / "1"
    if not (path / "saved_model.pb").exists():
        pytest.fail(f"{path} is missing: the default models are committed (make models)")
    return path
