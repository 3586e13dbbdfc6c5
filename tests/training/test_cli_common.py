"""The trainers and export CLIs over training/cli_common.py: the Makefile's arguments still
parse to the same configs, defaults come from each config, and --help names every option."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from training.char_lstm import train as char_lstm_train
from training.gpt2 import train as gpt2_train


def makefile_char_lstm_args() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"^CHAR_LSTM_ARGS := (.+?)\n\S", text, re.MULTILINE | re.DOTALL)
    assert block
    return block.group(1).replace("\\\n", " ").split()


def test_the_makefile_char_lstm_arguments_parse_as_before() -> None:
    cfg = char_lstm_train.parse_args(
        ["--corpus", "data/corpora/kjv_en", "--run-dir", "runs/x", *makefile_char_lstm_args()]
    )
    assert cfg == char_lstm_train.TrainConfig(
        corpus=Path("data/corpora/kjv_en"),
        run_dir=Path("runs/x"),
        units=256,
        layers=2,
        embed_dim=64,
        batch_size=64,
        seq_len=128,
        steps=1200,
        lr=3e-3,
        eval_every=200,
        seed=1234,
    )


@pytest.mark.parametrize("module", [char_lstm_train, gpt2_train])
def test_defaults_come_from_the_config_and_every_field_has_an_option(
    module, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = module.parse_args(["--corpus", "c", "--run-dir", "r"])
    assert cfg == module.TrainConfig(Path("c"), Path("r"))
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(module.TrainConfig):
        option = "--no-jit" if field.name == "jit" else "--" + field.name.replace("_", "-")
        assert option in text, option


@pytest.mark.parametrize(
    ("module", "options"),
    [
        (
            "training.char_lstm.export",
            ("--run-dir", "--out", "--name", "--language", "--checkpoint"),
        ),
        ("training.gpt2.export", ("--baseline", "--weights-dtype", "--checkpoint", "--out")),
        ("training.gpt2.import_checkpoint", ("--out", "--name", "--tokenizer", "--licence")),
        ("training.captioner.export_run", ("--run-dir", "--beam-size", "--length-alpha")),
    ],
)
def test_export_clis_explain_their_options(
    module: str, options: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, option
