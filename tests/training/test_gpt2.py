"""GPT-2: tokenizers, training (resume, held-out figures), export with a KV cache."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from talkative_common.model_client import GENERATE, ModelRepository
from talkative_common.model_client.inprocess import InProcessClient
from tests.support.text_models import RUN_FILES
from tests.support.text_models import call_generate as call
from training.gpt2.export import (
    MAX_NEW_TOKENS_CAP,
    WARMUP_FILE,
    GPT2Generator,
    export_run,
    weights_from_export,
)
from training.gpt2.model import GPT2Config, build_model, from_weights, to_weights
from training.gpt2.tokenizer import (
    END_OF_TEXT,
    decode,
    encode,
    end_id,
    load,
    original_gpt2,
    train_bpe,
)
from training.gpt2.train import TrainConfig, eval_windows, split_documents, train

HARD_TEXTS = [
    "Là où l'été s'achève, Noël: « déjà » — ô Ève, Œdipe, ça ç'a été.",
    "Emoji 🙂👍🏽 and 👨‍👩‍👧 families, 中文, العربية",
    "control \x00\x01\x07\x1b[31m\t tab\r\n crlf \u200b zero-width \ufeff bom",
    "  leading and trailing spaces  \n\n",
]

TINY = dict(
    preset="tiny",
    vocab_size=300,
    batch_size=4,
    steps=6,
    warmup_steps=2,
    eval_every=3,
    threads=1,
    jit=False,
    seed=3,
)


@pytest.fixture(scope="module")
def run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("gpt2_run")
    train(TrainConfig(corpus=tiny_corpus, run_dir=run_dir, **TINY))  # type: ignore[arg-type]
    return run_dir


@pytest.fixture(scope="module")
def export(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpt2_models") / "tiny_gpt2" / "1"
    baseline = out.parent.parent / "char_lstm_card.json"
    baseline.write_text(json.dumps({"held_out_loss": {"nats_per_char": 9.0}}))
    export_run(run, out, name="tiny_gpt2", language="en", baseline=baseline)
    return out


@pytest.fixture(scope="module")
def generate(export: Path) -> Any:
    return tf.saved_model.load(str(export)).signatures["generate"]


@pytest.fixture(scope="module")
def keras_model(run: Path) -> Any:
    config = GPT2Config(**json.loads((run / "config.json").read_text())["model"])
    model = build_model(config)
    model.load_weights(run / "checkpoints" / "best.weights.h5")
    return model


def greedy_reference(model: Any, prompt: list[int], n: int) -> list[int]:
    seq, out = list(prompt), []
    for _ in range(n):
        token = int(np.argmax(model(np.asarray([seq], np.int32))[0, -1]))
        out.append(token)
        seq.append(token)
    return out


# -- tokenizers ------------------------------------------------------------------------


def test_original_gpt2_vocabulary_gives_the_released_ids() -> None:
    tok = original_gpt2()
    assert tok.get_vocab_size() == 50257 and end_id(tok) == 50256
    assert encode(tok, "Hello world") == [15496, 995]
    assert encode(tok, " the") == [262]
    for text in HARD_TEXTS:
        assert decode(tok, encode(tok, text)) == text


def test_trained_bpe_round_trips_and_learns_the_corpus(tmp_path: Path) -> None:
    corpus = ["And the king said unto the people, Go ye and sow the field."] * 50
    tok = train_bpe(corpus, 300, show_progress=False)
    assert 258 < tok.get_vocab_size() <= 300  # a tiny corpus may run out of merges
    assert tok.token_to_id(END_OF_TEXT) is not None
    # Learnt merges make the corpus's words cheaper than bytes.
    assert len(encode(tok, corpus[0])) < len(corpus[0].encode()) / 2
    tok.save(str(tmp_path / "tokenizer.json"))
    again = load(tmp_path / "tokenizer.json")
    for text in [*HARD_TEXTS, corpus[0]]:
        ids = encode(again, text)
        assert max(ids) < 300 and decode(again, ids) == text


def test_trained_bpe_refuses_a_vocabulary_without_room() -> None:
    with pytest.raises(ValueError, match="at least 258"):
        train_bpe(["abc"], 100)


# -- training --------------------------------------------------------------------------


def test_split_documents_follows_the_corpus_layout() -> None:
    text = "Genesis\n\n1:1 In the beginning.\n1:2 And.\n\nExodus\n\n1:1 Now.\n"
    assert split_documents(text, 2) == [
        "Genesis\n\n1:1 In the beginning.\n1:2 And.",
        "Exodus\n\n1:1 Now.",
    ]
    assert split_documents("a\n\nb", 2) == ["a", "b"]
    assert split_documents("a\n\nb\n\nc", 2) == ["a\n\nb\n\nc"]  # no guessing


@pytest.mark.parametrize(
    ("n", "context", "stride"), [(50, 8, 4), (9, 8, 4), (5, 8, 4), (100, 16, 16)]
)
def test_eval_windows_score_every_target_once(n: int, context: int, stride: int) -> None:
    ids = np.arange(n, dtype=np.int32)
    xs, ys, mask = eval_windows(ids, context, stride)
    scored = ys[mask > 0]
    assert sorted(scored.tolist()) == list(range(1, n))
    assert np.all(ys[mask > 0] == xs[mask > 0] + 1)  # each target follows its input


def test_training_writes_resumable_artefacts_and_held_out_figures(run: Path) -> None:
    for name in ("tokenizer.json", *RUN_FILES):
        assert (run / name).exists(), name
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 6
    assert result["best_valid_perplexity"] == pytest.approx(
        math.exp(result["best_valid_nats_per_token"])
    )
    ratio = result["valid_tokens"] / result["valid_chars"]
    assert result["best_valid_nats_per_char"] == pytest.approx(
        result["best_valid_nats_per_token"] * ratio
    )
    assert result["best_valid_bits_per_char"] == pytest.approx(
        result["best_valid_nats_per_char"] / math.log(2)
    )
    history = json.loads((run / "checkpoints/state.json").read_text())["history"]
    assert [s for s, _ in history["valid"]] == [3, 6]
    # Training lowers the loss from the uniform guess over the vocabulary.
    assert result["best_valid_nats_per_token"] < math.log(300)


def test_interrupted_run_resumes_to_the_same_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    straight = train(TrainConfig(corpus=tiny_corpus, run_dir=tmp_path / "a", **TINY))  # type: ignore[arg-type]
    stopped = train(
        TrainConfig(corpus=tiny_corpus, run_dir=tmp_path / "b", stop_after=4, **TINY)  # type: ignore[arg-type]
    )
    assert stopped == {"steps": 4, "stopped_early": True}
    resumed = train(TrainConfig(corpus=tiny_corpus, run_dir=tmp_path / "b", **TINY))  # type: ignore[arg-type]
    assert resumed["final_valid_nats_per_token"] == pytest.approx(
        straight["final_valid_nats_per_token"], rel=1e-5
    )
    with pytest.raises(SystemExit, match="another configuration"):
        train(TrainConfig(corpus=tiny_corpus, run_dir=tmp_path / "b", **{**TINY, "lr": 0.1}))  # type: ignore[arg-type]


def test_a_continuation_starts_from_the_finished_runs_weights_and_tokenizer(
    run: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    first = json.loads((run / "result.json").read_text())
    # Zero learning rate: the continuation's weights are the first run's best, unchanged.
    frozen = {**TINY, "lr": 0.0, "min_lr_ratio": 1.0, "seed": 4}
    cont = train(
        TrainConfig(corpus=tiny_corpus, run_dir=tmp_path / "c", init_from=run, **frozen)  # type: ignore[arg-type]
    )
    assert (tmp_path / "c" / "tokenizer.json").read_text() == (run / "tokenizer.json").read_text()
    assert cont["final_valid_nats_per_token"] == pytest.approx(
        first["best_valid_nats_per_token"], rel=1e-5
    )
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["init_from"] == str(run)
    card = export_run(tmp_path / "c", tmp_path / "m" / "1", name="cont", language="en")
    assert card["training"]["continued_from"] == {
        "run": run.name,
        "steps": 6,
        "batch_size": 4,
        "lr": TrainConfig.lr,
        "warmup_steps": 2,
        "seed": 3,
        "tokens_seen": first["tokens_seen"],
    }
    # A continuation of a continuation: the card tells the whole chain.
    again = {**frozen, "seed": 5}
    twice = tmp_path / "d"
    train(TrainConfig(corpus=tiny_corpus, run_dir=twice, init_from=tmp_path / "c", **again))  # type: ignore[arg-type]
    chain = export_run(twice, tmp_path / "m" / "2", name="cont", language="en")
    assert chain["training"]["continued_from"]["run"] == "c"
    assert chain["training"]["continued_from"]["seed"] == 4
    assert (
        chain["training"]["continued_from"]["continued_from"] == card["training"]["continued_from"]
    )


def test_weights_round_trip_through_hf_names(keras_model: Any) -> None:
    weights = to_weights(keras_model)
    assert weights["h.0.attn.c_attn.weight"].shape == (32, 96)
    again = from_weights(build_model(keras_model.config), weights)
    ids = np.asarray([[1, 2, 3, 4]], np.int32)
    np.testing.assert_allclose(again(ids), keras_model(ids), atol=1e-6)


# -- export ----------------------------------------------------------------------------


def test_export_meets_the_contract_with_card_tokenizer_and_warmup(export: Path) -> None:
    import asyncio

    client = InProcessClient(ModelRepository(export.parent.parent))
    GENERATE.check("tiny_gpt2", asyncio.run(client.signature("tiny_gpt2", "generate")))
    extra = export / "assets.extra"
    assert (extra / WARMUP_FILE).stat().st_size > 0
    card = json.loads((extra / "model_card.json").read_text())
    assert card["kind"] == "gpt2" and card["name"] == "tiny_gpt2"
    assert card["tokenizer"]["file"] == "tokenizer.json"
    assert card["tokenizer"]["end_id"] == end_id(load(extra / "tokenizer.json"))
    # The window slides, so the cap is the service's ceiling, not the context.
    assert card["max_new_tokens_cap"] == MAX_NEW_TOKENS_CAP and card["context"] == 64
    loss = card["held_out_loss"]
    assert {"nats_per_token", "perplexity", "bits_per_char", "chars"} <= set(loss)
    assert loss["char_lstm_baseline"]["nats_per_char"] == 9.0
    assert loss["char_lstm_baseline"]["gpt2_better"] is (loss["nats_per_char"] < 9.0)


def test_float16_storage_halves_the_weights(run: Path, export: Path, tmp_path: Path) -> None:
    half = tmp_path / "half" / "1"
    card = export_run(run, half, name="half", language="en", weights_dtype="float16")
    assert card["weights_dtype"] == "float16"

    def size(d: Path) -> int:
        return sum(f.stat().st_size for f in (d / "variables").iterdir())

    assert size(half) < 0.7 * size(export)
    full_w, _, _ = weights_from_export(export)
    half_w, _, _ = weights_from_export(half)
    for key, value in full_w.items():
        assert half_w[key].dtype == np.float32
        np.testing.assert_allclose(half_w[key], value, rtol=2e-3, atol=1e-4)


def test_export_matches_keras_greedy_refeeding(generate: Any, keras_model: Any) -> None:
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    out = call(generate, prompts, [12, 7])
    for row, prompt in enumerate(prompts):
        n = int(out["lengths"][row])
        assert out["token_ids"][row, :n].tolist() == greedy_reference(keras_model, prompt, n)


def test_cache_and_no_cache_generate_the_same_tokens(run: Path, keras_model: Any) -> None:
    weights, config = to_weights(keras_model), keras_model.config
    cached = GPT2Generator(weights, config, end_id=-1)
    full = GPT2Generator(weights, config, end_id=-1, use_cache=False)
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    for kw in ({}, {"temperature": 1.0, "top_k": [0, 5], "top_p": [0.9, 1.0], "seed": [3, 4]}):
        a = call(cached.generate, prompts, [10, 6], **kw)  # type: ignore[arg-type]
        b = call(full.generate, prompts, [10, 6], **kw)  # type: ignore[arg-type]
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])


def test_rows_are_independent_and_seeded(generate: Any) -> None:
    kw: dict[str, Any] = {"temperature": 1.2, "top_p": 0.95}
    batched = call(generate, [[5, 6, 7], [10]], [9, 9], seed=[7, 8], **kw)
    alone = call(generate, [[10]], 9, seed=8, **kw)
    assert batched["token_ids"][1, :9].tolist() == alone["token_ids"][0, :9].tolist()
    again = call(generate, [[10]], 9, seed=8, **kw)
    other = call(generate, [[10]], 9, seed=9, **kw)
    assert again["token_ids"].tolist() == alone["token_ids"].tolist()
    assert other["token_ids"].tolist() != alone["token_ids"].tolist()


def test_top_k_restricts_choices(generate: Any, keras_model: Any) -> None:
    prompt = [5, 6, 7]
    logits = keras_model(np.asarray([prompt], np.int32))[0, -1].numpy()
    top3 = set(np.argsort(logits)[-3:].tolist())
    firsts = {
        int(call(generate, [prompt], 1, temperature=3.0, top_k=3, seed=s)["token_ids"][0, 0])
        for s in range(30)
    }
    assert firsts <= top3 and len(firsts) > 1


def test_stops_at_the_end_token_per_row(keras_model: Any) -> None:
    weights, config = to_weights(keras_model), keras_model.config
    free_running = GPT2Generator(weights, config, end_id=-1)  # kept: tf.function holds it weakly
    free = call(free_running.generate, [[5, 6, 7], [10]], 12)
    # Make the 4th greedy token of row 0 the end token: row 0 stops there, row 1 may not.
    end = int(free["token_ids"][0, 3])
    stopping = GPT2Generator(weights, config, end_id=end)
    out = call(stopping.generate, [[5, 6, 7], [10]], 12)
    first = free["token_ids"][0].tolist().index(end)
    assert out["lengths"][0] == first <= 3
    assert out["token_ids"][0, :first].tolist() == free["token_ids"][0, :first].tolist()
    row1 = free["token_ids"][1].tolist()
    assert out["lengths"][1] == (row1.index(end) if end in row1 else 12)


def test_the_window_slides_past_the_context_and_bad_inputs_are_clamped(
    generate: Any, export: Path
) -> None:
    # Context 64: a 60-token prompt still gets its 50 tokens (the window slides).
    free = GPT2Generator(*weights_from_export(export)[:2], end_id=-1)
    out = call(free.generate, [[5] * 60, [6]], [50, 3])
    assert out["lengths"].tolist() == [50, 3]
    # Out-of-range ids, zero or negative lengths and budgets never crash the graph.
    odd = call(generate, [[-3, 10_000]], -4)
    assert odd["lengths"].tolist() == [0] and odd["token_ids"].shape == (1, 0)
    long = call(free.generate, [list(range(100))], 10)
    assert long["lengths"].tolist() == [10]  # cut to its first 64 tokens, then slides


def test_style_tokens_are_single_special_tokens() -> None:
    """A styled corpus's `<|novel|>` is one token, found in the corpus and by the tokenizer."""
    from training.gpt2.tokenizer import corpus_style_tokens, decode, encode, style_ids

    text = "<|bible|>\nIn the beginning God created\n\n<|novel|>\nIt is a truth\n" * 30
    styles = corpus_style_tokens(text)
    assert styles == ["<|bible|>", "<|novel|>"]
    tokenizer = train_bpe([text], 300, show_progress=False, special_tokens=styles)
    ids = style_ids(tokenizer)
    assert ids == {"bible": 1, "novel": 2}  # right after the end token (id 0)
    encoded = encode(tokenizer, "<|novel|>\nIt is")
    assert encoded[0] == ids["novel"] and decode(tokenizer, encoded) == "<|novel|>\nIt is"
    with pytest.raises(ValueError, match="at least 260"):
        train_bpe([text], 259, special_tokens=styles)
