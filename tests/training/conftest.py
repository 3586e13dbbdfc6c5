"""Fixtures of the training tests: the captioner's encoder, converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def encoder_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.captioner import encoder

    out = tmp_path_factory.mktemp("encoder") / "efficientnet_lite0.weights.h5"
    assert encoder.main(["--out", str(out)]) == 0
    return out
