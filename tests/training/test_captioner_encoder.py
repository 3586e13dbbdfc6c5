"""The captioner's encoder: EfficientNet-Lite0 with the offline ImageNet weights, in Keras."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from training.captioner import encoder
from training.captioner.torch_state import load_legacy_state_dict


@pytest.fixture(scope="module")
def converted(encoder_weights: Path) -> dict[str, Any]:
    return {"model": encoder.load_encoder(encoder_weights), "names": encoder.imagenet_class_names()}


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def top(converted: dict[str, Any], photos: list[bytes], k: int = 3) -> list[list[str]]:
    import tensorflow as tf

    logits = converted["model"](encoder.images_from_bytes(tf.constant(photos)))["logits"]
    order = np.argsort(-logits.numpy(), axis=1)[:, :k]
    return [[converted["names"][i] for i in row] for row in order]


def test_state_dict_is_read_without_torch() -> None:
    state = load_legacy_state_dict(encoder.offline_state_dict_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(isinstance(v, np.ndarray) for v in state.values())


def test_every_tensor_is_copied(converted: dict[str, Any]) -> None:
    # EfficientNet-Lite0: 4.65 M parameters, 1280-d pooled features, 1000 classes.
    model = converted["model"]
    assert 4_600_000 < model.count_params() < 4_700_000
    assert model.output["pooled"].shape[-1] == encoder.POOLED_DIM


def test_classifies_the_photos_it_ships_with(converted: dict[str, Any]) -> None:
    from skimage import data

    chelsea, coffee, rocket = top(
        converted, [png(data.chelsea()), png(data.coffee()), png(data.rocket())]
    )
    assert chelsea[0] in {"tabby cat", "a cat having a striped coat", "Egyptian Mau"}, chelsea
    assert coffee[0] == "espresso", coffee
    assert {"missile", "space shuttle", "projectile"} & set(rocket), rocket


def test_preprocessing_centre_crops_any_shape() -> None:
    import tensorflow as tf

    wide = png(np.full((100, 300, 3), 200, np.uint8))
    tall = png(np.zeros((500, 40, 3), np.uint8))
    batch = encoder.images_from_bytes(tf.constant([wide, tall])).numpy()
    assert batch.shape == (2, encoder.IMAGE_SIZE, encoder.IMAGE_SIZE, 3)
    np.testing.assert_allclose(batch[0], (200 - 127) / 128, atol=1e-4)
    np.testing.assert_allclose(batch[1], -127 / 128, atol=1e-4)


def test_cli_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        encoder.main(["--help"])
    text = capsys.readouterr().out
    assert "--out" in text and "--state-dict" in text


def test_missing_state_dict_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        encoder.convert(tmp_path / "w.weights.h5", tmp_path / "missing.pth")
