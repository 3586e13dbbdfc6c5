"""The char-LSTM pipeline on a tiny model: training artefacts, resume, export fidelity, sampling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from talkative_common.model_client import Outputs
from tests.support.text_models import RUN_FILES, call_generate, tiny_char_lstm
from training.char_lstm.export import load_keras_from_export
from training.char_lstm.train import TrainConfig, stream_windows, train
from training.char_lstm.vocab import CharVocab


def call(export: Path, prompts: list[list[int]], n: int | list[int], **knobs: Any) -> Outputs:
    """The export's `generate` signature on these prompts (knobs: see call_generate)."""
    return call_generate(
        tf.saved_model.load(str(export)).signatures["generate"], prompts, n, **knobs
    )


@pytest.fixture(scope="module")
def export(tiny_repository: Path) -> Path:
    return tiny_repository / "tiny_en" / "1"


@pytest.fixture(scope="module")
def vocab(export: Path) -> CharVocab:
    return CharVocab.load(export / "assets.extra" / "vocab.json")


def test_training_writes_resumable_artefacts(tiny_run: Path) -> None:
    for name in ("vocab.json", *RUN_FILES):
        assert (tiny_run / name).exists(), name
    result = json.loads((tiny_run / "result.json").read_text())
    assert result["steps"] == 6
    assert (
        0
        < result["best_valid_nats_per_char"]
        < np.log(len(CharVocab.load(tiny_run / "vocab.json")))
    )
    assert (tiny_run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interrupted_run_resumes_to_the_same_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    sizes = dict(units=16, steps=8, eval_every=4, warmup_steps=2, seed=5)
    straight = train(tiny_char_lstm(tiny_corpus, tmp_path / "a", **sizes))
    # Stop mid-epoch at step 3 (as a crash after a checkpoint would), then the same command.
    stopped = train(tiny_char_lstm(tiny_corpus, tmp_path / "b", stop_after=3, **sizes))
    assert stopped == {"steps": 3, "stopped_early": True}
    assert json.loads((tmp_path / "b/checkpoints/state.json").read_text())["step"] == 3
    resumed = train(tiny_char_lstm(tiny_corpus, tmp_path / "b", **sizes))
    assert resumed["steps"] == 8
    assert resumed["final_valid_nats_per_char"] == pytest.approx(
        straight["final_valid_nats_per_char"], rel=1e-5
    )
    with pytest.raises(SystemExit, match="another configuration"):
        train(tiny_char_lstm(tiny_corpus, tmp_path / "b", **{**sizes, "units": 8}))


def test_a_corpus_too_small_for_one_batch_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("Too short to fill one batch.\n", encoding="utf-8")
    (corpus / "valid.txt").write_text("Short.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs at least"):
        train(TrainConfig(corpus=corpus, run_dir=tmp_path / "run", batch_size=4, seq_len=16))


def test_stream_windows_are_contiguous() -> None:
    data = np.arange(1000, dtype=np.int32)
    windows = stream_windows(data, batch=4, seq_len=10, offset=3)
    assert windows.shape[1:] == (4, 11)
    # Step k+1 continues each stream exactly where step k stopped.
    assert (windows[1, :, 0] == windows[0, :, -1]).all()
    assert windows[0, 0, 0] == 3


def test_export_matches_keras_greedy_refeeding(export: Path, vocab: CharVocab) -> None:
    model = load_keras_from_export(export)
    cfg = json.loads((export / "assets.extra/model_card.json").read_text())["architecture"]
    prompt = list(vocab.encode("And the king"))
    got = call(export, [prompt], 25)["token_ids"][0].tolist()
    seq = list(prompt)
    zeros = [np.zeros((1, cfg["units"]), np.float32)] * (2 * cfg["layers"])
    for _ in range(25):
        logits, *_ = model([np.asarray([seq], np.int32), *zeros])
        seq.append(int(np.argmax(logits[0, -1])))
    assert got == seq[len(prompt) :]


def test_padded_rows_read_only_their_own_prompt(export: Path, vocab: CharVocab) -> None:
    short, long = list(vocab.encode("the")), list(vocab.encode("And the king said"))
    alone = call(export, [short], 20)["token_ids"][0]
    batched = call(export, [long, short], 20)["token_ids"][1]
    assert (alone == batched).all()


def test_same_seed_same_text_and_rows_are_independent(export: Path, vocab: CharVocab) -> None:
    p = list(vocab.encode("the word"))
    a = call(export, [p], 40, temperature=1.0, seed=11)["token_ids"]
    b = call(export, [p, list(vocab.encode("k"))], 40, temperature=1.0, seed=[11, 3])["token_ids"]
    c = call(export, [p], 40, temperature=1.0, seed=12)["token_ids"]
    assert (a[0] == b[0]).all()
    assert (a != c).any()


def test_per_row_lengths_and_knobs(export: Path, vocab: CharVocab) -> None:
    p = list(vocab.encode("the"))
    out = call(export, [p, p, p], [5, 0, 12], temperature=[0.0, 1.0, 1.0], top_k=[0, 0, 1])
    assert out["lengths"].tolist() == [5, 0, 12]
    assert out["token_ids"].shape == (3, 12)
    assert (out["token_ids"][0, 5:] == 0).all()
    greedy = call(export, [p], 12)["token_ids"][0]
    assert (out["token_ids"][2] == greedy).all()  # top_k=1 is greedy whatever the temperature


def test_top_p_small_is_greedy(export: Path, vocab: CharVocab) -> None:
    p = list(vocab.encode("the"))
    nucleus = call(export, [p], 15, temperature=1.5, top_p=1e-6, seed=99)["token_ids"]
    assert (nucleus == call(export, [p], 15)["token_ids"]).all()


def test_top_k_restricts_choices(export: Path, vocab: CharVocab) -> None:
    model = load_keras_from_export(export)
    cfg = json.loads((export / "assets.extra/model_card.json").read_text())["architecture"]
    p = list(vocab.encode("the"))
    zeros = [np.zeros((1, cfg["units"]), np.float32)] * (2 * cfg["layers"])
    logits, *_ = model([np.asarray([p], np.int32), *zeros])
    top3 = set(np.argsort(logits[0, -1].numpy())[-3:].tolist())
    firsts = {
        int(call(export, [p], 1, temperature=2.0, top_k=3, seed=s)["token_ids"][0, 0])
        for s in range(40)
    }
    assert firsts <= top3
    assert len(firsts) > 1


def test_model_card_and_vocab(export: Path) -> None:
    card = json.loads((export / "assets.extra/model_card.json").read_text())
    for key in (
        "name",
        "kind",
        "language",
        "training_corpus",
        "parameters",
        "held_out_loss",
        "date",
        "licence",
    ):
        assert key in card
    assert card["kind"] == "char_lstm"
    assert card["training_corpus"]["licence"] == "CC0"
