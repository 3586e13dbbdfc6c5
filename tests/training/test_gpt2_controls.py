"""GPT-2 export: the sliding window (generation past the context) and the repetition
controls of `generate_controlled`, on a tiny randomly initialised GPT-2 of context 16."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from talkative_common.model_client import GENERATE, GENERATE_CONTROLLED
from tests.support.text_models import call_generate as call
from training.gpt2.export import GPT2Generator
from training.gpt2.model import build_model, preset, to_weights
from training.sampling import ngram_bans

CONTEXT = 16
VOCAB = 300


@pytest.fixture(scope="module")
def parts() -> tuple[dict[str, np.ndarray], Any]:
    import keras

    keras.utils.set_random_seed(2)
    config = preset("tiny", VOCAB, n_positions=CONTEXT)
    # Sharpened weights: greedy decoding falls into loops, which the controls must break.
    weights = {
        k: v * (6.0 if v.ndim == 2 else 1.0) for k, v in to_weights(build_model(config)).items()
    }
    return weights, config


@pytest.fixture(scope="module")
def generator(parts: tuple[dict[str, np.ndarray], Any]) -> GPT2Generator:
    return GPT2Generator(*parts, end_id=-1)


def controlled(
    gen: GPT2Generator,
    prompts: list[list[int]],
    n: int,
    penalty: float | list[float] = 1.0,
    ngram: int | list[int] = 0,
    **kw: Any,
) -> dict[str, np.ndarray]:
    batch = len(prompts)

    def fn(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        p = penalty if isinstance(penalty, list) else [penalty] * batch
        g = ngram if isinstance(ngram, list) else [ngram] * batch
        return gen.generate_controlled(
            **inputs,
            repetition_penalty=tf.constant(p, tf.float32),
            no_repeat_ngram_size=tf.constant(g, tf.int32),
        )

    return call(fn, prompts, n, **kw)


def ngrams(seq: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


SAMPLED: dict[str, Any] = {"temperature": 1.0, "top_k": [0, 5], "top_p": [0.9, 1.0]}


def test_generation_goes_past_the_context(generator: GPT2Generator) -> None:
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    for kw in ({}, SAMPLED | {"seed": [3, 4]}):
        out = call(generator.generate, prompts, [50, 40], **kw)
        assert out["lengths"].tolist() == [50, 40] and out["token_ids"].shape == (2, 50)
        again = call(generator.generate, prompts, [50, 40], **kw)
        np.testing.assert_array_equal(out["token_ids"], again["token_ids"])
        one = {k: v[1] if isinstance(v, list) else v for k, v in kw.items()}
        alone = call(generator.generate, prompts[1:], 40, **one)
        assert alone["token_ids"][0].tolist() == out["token_ids"][1, :40].tolist()


def test_a_prompt_filling_the_context_slides_at_once(generator: GPT2Generator) -> None:
    out = call(generator.generate, [list(range(1, CONTEXT + 1)), [4]], 30)
    assert out["lengths"].tolist() == [30, 30]


def test_sliding_cache_matches_recomputing_each_window(
    parts: tuple[dict[str, np.ndarray], Any],
) -> None:
    full = GPT2Generator(*parts, end_id=-1, use_cache=False)
    cached = GPT2Generator(*parts, end_id=-1)
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    for kw in ({}, SAMPLED | {"seed": [3, 4]}):
        a = call(cached.generate, prompts, [45, 37], **kw)
        b = call(full.generate, prompts, [45, 37], **kw)
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])


def test_controls_off_change_nothing(generator: GPT2Generator) -> None:
    prompts = [[5, 6, 7], [10]]
    for kw in ({}, SAMPLED | {"seed": [7, 8]}):
        plain = call(generator.generate, prompts, 30, **kw)
        off = controlled(generator, prompts, 30, **kw)
        np.testing.assert_array_equal(plain["token_ids"], off["token_ids"])


@pytest.mark.parametrize("size", [1, 2, 3])
def test_no_repeat_ngram_breaks_greedy_loops(generator: GPT2Generator, size: int) -> None:
    prompt = [5, 6, 7, 8, 9]
    plain = call(generator.generate, [prompt], 40)["token_ids"][0].tolist()
    assert len(set(ngrams(prompt + plain, 2))) < len(ngrams(prompt + plain, 2))  # it loops
    out = controlled(generator, [prompt, prompt], 40, ngram=[size, 0])
    text = prompt + out["token_ids"][0].tolist()
    grams = ngrams(text, size)
    assert len(set(grams)) == len(grams)  # no n-gram twice in prompt + generated
    assert out["token_ids"][1].tolist() == plain  # per row: the other row is untouched


def test_no_repeat_ngram_holds_while_sampling_past_the_context(generator: GPT2Generator) -> None:
    prompt = [5, 6, 7, 8, 9]
    out = controlled(generator, [prompt], 60, ngram=3, temperature=0.8, seed=5)
    grams = ngrams(prompt + out["token_ids"][0].tolist(), 3)
    assert out["lengths"].tolist() == [60] and len(set(grams)) == len(grams)


def test_repetition_penalty_changes_greedy_text_only_when_on(generator: GPT2Generator) -> None:
    prompt = [5, 6, 7, 8, 9]
    plain = call(generator.generate, [prompt], 30)["token_ids"][0].tolist()
    out = controlled(generator, [prompt, prompt], 30, penalty=[1.8, 1.0])
    penalised = out["token_ids"][0].tolist()
    assert penalised != plain and out["token_ids"][1].tolist() == plain
    # Fewer repeats: more distinct tokens under the penalty.
    assert len(set(penalised)) > len(set(plain))


def test_ngram_bans_match_a_python_reference() -> None:
    rng = random.Random(0)
    batch, span, vocab = 6, 24, 5
    history = [[rng.randrange(vocab) for _ in range(span)] for _ in range(batch)]
    lengths = [rng.randrange(0, span + 1) for _ in range(batch)]
    sizes = [0, 1, 2, 3, 4, 20]
    got = ngram_bans(
        tf.constant(history, tf.int32),
        tf.constant(lengths, tf.int32),
        tf.constant(sizes, tf.int32),
        vocab,
    ).numpy()
    for b in range(batch):
        seq, n = history[b][: lengths[b]], min(sizes[b], 16)
        banned = set()
        if n > 0 and len(seq) >= n - 1:
            tail = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
            banned = {g[-1] for g in ngrams(seq, n) if g[:-1] == tail}
        assert set(np.flatnonzero(got[b]).tolist()) == banned, (b, seq, n)


def test_export_offers_both_signatures_and_lists_them(
    parts: tuple[dict[str, np.ndarray], Any], tmp_path: Path
) -> None:
    import asyncio

    from talkative_common.model_client import ModelRepository
    from talkative_common.model_client.inprocess import InProcessClient
    from training.gpt2.export import export_weights
    from training.gpt2.tokenizer import train_bpe

    weights, config = parts
    tok = tmp_path / "tokenizer.json"
    train_bpe(["And the king said unto the people."] * 20, VOCAB, show_progress=False).save(
        str(tok)
    )
    out = tmp_path / "models" / "tiny_slide" / "1"
    card = {"name": "tiny_slide", "language": "en", "description": "test", "licence": "CC0"}
    export_weights(weights, config, tok, out, card)
    saved = json.loads((out / "assets.extra" / "model_card.json").read_text())
    assert saved["signatures"] == ["generate", "generate_controlled"]
    assert saved["generation_options"]["no_repeat_ngram_size"]["default"] == 4
    assert saved["sliding_window"] == {"keep": CONTEXT // 5}
    assert saved["max_new_tokens_cap"] > CONTEXT
    client = InProcessClient(ModelRepository(out.parent.parent))
    for contract in (GENERATE, GENERATE_CONTROLLED):
        info = asyncio.run(client.signature("tiny_slide", contract.name))
        contract.check("tiny_slide", info)
    loaded = tf.saved_model.load(str(out))
    reference = GPT2Generator(weights, config, end_id=saved["tokenizer"]["end_id"])
    a = call(loaded.signatures["generate"], [[5, 6, 7]], 40)
    b = call(reference.generate, [[5, 6, 7]], 40)
    np.testing.assert_array_equal(a["token_ids"], b["token_ids"])
    fn = loaded.signatures["generate_controlled"]
    c = controlled(reference, [[5, 6, 7]], 40, penalty=1.3, ngram=2)
    d = call(
        lambda **kw: fn(
            **kw,
            repetition_penalty=tf.constant([1.3]),
            no_repeat_ngram_size=tf.constant([2]),
        ),
        [[5, 6, 7]],
        40,
    )
    np.testing.assert_array_equal(c["token_ids"], d["token_ids"])
