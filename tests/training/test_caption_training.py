"""The captioner's training pipeline end to end, on a small data set of offline photos.

Ten real photos (scikit-image, scikit-learn and matplotlib ship them) with two or
three true captions each, written as COCO JSON, as a Flickr token file and as a
folder with sidecar captions. A small decoder trains on eight of them and is
scored on the other two; with so few images held-out BLEU says little, so the test
asks it only to be a BLEU, and asks the training images to be captioned well.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from training.captioner import offline_photos
from training.captioner.datasets import load_dataset, split_dataset
from training.captioner.vocab import WordVocab, tokenize

pytestmark = pytest.mark.slow


# offline photo -> (file name, captions that say what is in the photo)
CAPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "astronaut": (
        "astronaut.jpg",
        (
            "An astronaut in an orange space suit smiling in front of a flag.",
            "A woman in an orange spacesuit with a helmet beside her.",
            "A smiling astronaut next to a model of the space shuttle.",
        ),
    ),
    "chelsea": (
        "chelsea.png",
        ("A close up of a tabby cat's face.", "A striped cat with green eyes looking aside."),
    ),
    "coffee": (
        "coffee.jpg",
        (
            "A cup of coffee on a red saucer with a spoon.",
            "An espresso in a red cup on a wooden table.",
        ),
    ),
    "rocket": (
        "rocket.jpg",
        (
            "A rocket on the launch pad between tall towers.",
            "A white rocket standing on a launch pad at dusk.",
        ),
    ),
    "motorcycle": (
        "motorcycle.jpg",
        ("A red motorcycle parked in a garage.", "A red and black motorbike on a concrete floor."),
    ),
    "camera": (
        "camera.png",
        (
            "A man looking through a camera on a tripod.",
            "A black and white photo of a cameraman in a field.",
        ),
    ),
    "horse": (
        "horse.png",
        ("A white silhouette of a horse on a black background.", "The outline of a horse."),
    ),
    "china": (
        "china.jpg",
        (
            "A tall Chinese pagoda surrounded by trees.",
            "A temple with many roofs above a lake.",
        ),
    ),
    "flower": (
        "flower.jpg",
        ("An orange dahlia in close up.", "An orange flower in front of green leaves."),
    ),
    "grace_hopper": (
        "grace_hopper.jpg",
        (
            "An old woman in a navy uniform and glasses.",
            "A portrait of a navy officer in front of a flag.",
        ),
    ),
}
PHOTOS = {
    file: (photo.load, captions)
    for photo in offline_photos.PHOTOS
    for file, captions in [CAPTIONS[photo.name]]
}
HELD_OUT, SEED = 0.2, 0


def encode(pixels: np.ndarray, name: str) -> bytes:
    if pixels.dtype == bool:  # the horse is a mask
        pixels = np.where(pixels, 255, 0).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG" if name.endswith(".jpg") else "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The photos in images/, and the three forms of their captions."""
    root = tmp_path_factory.mktemp("photos")
    images = root / "images"
    images.mkdir()
    folder = root / "folder"
    folder.mkdir()
    coco: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": []}
    tokens = []
    for image_id, photo in enumerate(offline_photos.PHOTOS, 1):
        name, captions = CAPTIONS[photo.name]
        blob = encode(photo.load(), name)
        (images / name).write_bytes(blob)
        (folder / name).write_bytes(blob)
        (folder / name).with_suffix(".txt").write_text("\n".join(captions) + "\n")
        coco["images"].append({"id": image_id, "file_name": name})
        for n, caption in enumerate(captions):
            coco["annotations"].append(
                {"id": 100 * image_id + n, "image_id": image_id, "caption": caption}
            )
            tokens.append(f"{name}#{n}\t{caption}\n")
    (root / "captions.json").write_text(json.dumps(coco))
    (root / "tokens.txt").write_text("".join(tokens))
    return root


def config(data_root: Path, encoder_weights: Path, **changes: Any) -> Any:
    from training.captioner.train import TrainConfig

    settings: dict[str, Any] = {
        "data": data_root / "captions.json",
        "run_dir": data_root / "run_coco",
        "images_dir": data_root / "images",
        "encoder_weights": encoder_weights,
        "feature_cache": data_root / "cache" / "features.npz",
        "min_count": 1,
        "max_vocab": None,
        "embed_dim": 32,
        "units": 64,
        "dropout": 0.0,
        "steps": 300,
        "batch_size": 16,
        "lr": 1e-2,
        "eval_every": 100,
        "held_out": HELD_OUT,
        "seed": SEED,
        "export_to": data_root / "models" / "captioner" / "1",
        "name": "captioner_photos",
    }
    return TrainConfig(**(settings | changes))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def coco_run(data_root: Path, encoder_weights: Path) -> dict[str, Any]:
    from training.captioner.train import train

    cfg = config(data_root, encoder_weights)
    metrics = train(cfg)
    return {"cfg": cfg, "metrics": metrics, "cache_sha": sha256(cfg.feature_cache)}


def split(data_root: Path) -> tuple[list[str], list[str]]:
    data = load_dataset("coco", data_root / "captions.json", data_root / "images")
    train, held = split_dataset(data.items, held_out=HELD_OUT, seed=SEED)
    return [i.name for i in train], [i.name for i in held]


def test_the_three_forms_are_the_same_data_set(data_root: Path) -> None:
    forms = [
        load_dataset("auto", data_root / "captions.json", data_root / "images"),
        load_dataset("auto", data_root / "tokens.txt", data_root / "images"),
        load_dataset("auto", data_root / "folder"),
    ]
    assert [d.kind for d in forms] == ["coco", "flickr", "folder"]
    expected = {name: captions for name, (_, captions) in PHOTOS.items()}
    for data in forms:
        assert {i.name: i.captions for i in data.items} == expected


def test_run_writes_model_curve_and_metrics(coco_run: dict[str, Any], data_root: Path) -> None:
    run, metrics = coco_run["cfg"].run_dir, coco_run["metrics"]
    for name in ("decoder.weights.h5", "decoder_config.json", "vocab.json", "metrics.json"):
        assert (run / name).stat().st_size > 0, name
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))

    assert metrics["dataset"]["images"] == 10 and metrics["dataset"]["captions"] == 21
    train_names, held_names = split(data_root)
    assert metrics["split"]["train_images"] == len(train_names) == 8
    assert metrics["split"]["held_out_images"] == len(held_names) == 2
    assert {e["image"] for e in metrics["examples"]} == set(held_names)
    assert metrics["seed"] == SEED and metrics["config"]["steps"] == 300
    assert metrics["features"]["computed"] == 10 and metrics["features"]["cached"] == 0

    # The training loss fell a long way; the weights kept are the best held-out step's.
    training = metrics["training"]
    assert training["train_loss_last"] < 0.3 * training["train_loss_first"]
    assert metrics["held_out_loss"] == min(loss for _, loss in training["held_out_losses"])
    # Two held-out photos say little: BLEU-4 must just be a BLEU. The training photos
    # must be captioned with (nearly) their own captions.
    assert 0.0 <= metrics["bleu4"] <= 1.0
    assert metrics["bleu4_train"] > 0.7, metrics["bleu4_train_detail"]

    # The vocabulary comes from the training captions only.
    vocab = set(WordVocab.load(run / "vocab.json").words)
    train_words = {w for n in train_names for c in PHOTOS[n][1] for w in tokenize(c)}
    held_words = {w for n in held_names for c in PHOTOS[n][1] for w in tokenize(c)}
    assert vocab - {"<pad>", "<start>", "<end>", "<unk>"} == train_words
    assert held_words - train_words, "the held-out photos have words of their own"
    assert metrics["vocab"]["held_out_unknown_rate"] > 0


def test_the_exported_model_captions_a_training_photo(
    coco_run: dict[str, Any], data_root: Path
) -> None:
    import tensorflow as tf

    from training import serving_warmup

    version = coco_run["cfg"].export_to
    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    assert card["kind"] == "captioner" and card["name"] == "captioner_photos"
    assert card["metrics"]["bleu4_held_out"] == coco_run["metrics"]["bleu4"]
    assert card["features"] == "pooled" and card["beam_size"] == 3
    assert serving_warmup.check_version(version, warmup=False) == []

    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    train_names, _ = split(data_root)
    for name in train_names[:3]:
        out = serve(image_bytes=tf.constant([(data_root / "images" / name).read_bytes()]))
        top = out["captions"].numpy().astype(str)[0, 0]
        own = {w for c in PHOTOS[name][1] for w in tokenize(c)}
        assert tokenize(top) and set(tokenize(top)) <= own, (name, top)


def test_a_second_run_reuses_the_feature_cache(
    coco_run: dict[str, Any], data_root: Path, encoder_weights: Path
) -> None:
    from training.captioner.train import train

    # The same photos, given as a Flickr token file: the cache is keyed by their bytes.
    cfg = config(
        data_root,
        encoder_weights,
        data=data_root / "tokens.txt",
        run_dir=data_root / "run_flickr",
        steps=20,
        eval_every=10,
        export_to=None,
    )
    metrics = train(cfg)
    assert metrics["dataset"]["kind"] == "flickr"
    assert metrics["features"]["computed"] == 0 and metrics["features"]["cached"] == 10
    assert sha256(cfg.feature_cache) == coco_run["cache_sha"], "the cache was not rewritten"
    assert (cfg.run_dir / "loss_curve.png").exists()


def test_a_changed_image_is_encoded_again(
    coco_run: dict[str, Any], data_root: Path, encoder_weights: Path, tmp_path: Path
) -> None:
    from training.captioner.encoder import load_encoder
    from training.captioner.features import image_features

    folder = data_root / "folder"
    cache = tmp_path / "features.npz"
    cache.write_bytes(coco_run["cfg"].feature_cache.read_bytes())
    changed = tmp_path / "coffee.jpg"
    changed.write_bytes(encode(np.fliplr(PHOTOS["coffee.jpg"][0]()), "coffee.jpg"))
    paths = [folder / "chelsea.png", changed, folder / "rocket.jpg", folder / "chelsea.png"]
    encoder = load_encoder(encoder_weights)
    features, stats = image_features(paths, encoder, cache_path=cache)
    assert (stats.images, stats.unique, stats.cached, stats.computed) == (4, 3, 2, 1)
    assert features.shape == (4, 1280) and features.dtype == np.float32
    np.testing.assert_array_equal(features[0], features[3])
    # What the cache gave is what the encoder gives.
    fresh, _ = image_features(paths[:1], encoder, cache_path=None)
    np.testing.assert_allclose(features[0], fresh[0], rtol=1e-4, atol=1e-5)
    # Another feature kind is another entry of the same cache.
    probs, stats = image_features(paths[:1], encoder, kind="class_probs", cache_path=cache)
    assert stats.computed == 1 and probs.shape == (1, 1000)
    assert probs.sum() == pytest.approx(1.0, rel=1e-4)
    _, stats = image_features(paths, encoder, cache_path=cache)
    assert stats.computed == 0


def test_an_undecodable_image_is_named(data_root: Path, encoder_weights: Path, tmp_path: Path):
    from training.captioner.encoder import load_encoder
    from training.captioner.features import image_features

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a JPEG")
    with pytest.raises(ValueError, match=r"broken\.jpg: not an image TensorFlow can decode"):
        image_features(
            [data_root / "images" / "coffee.jpg", bad],
            load_encoder(encoder_weights),
            cache_path=None,
        )


def test_refuses_to_reuse_a_run_or_a_model_version(
    coco_run: dict[str, Any], data_root: Path, encoder_weights: Path
) -> None:
    from training.captioner.train import export_run, train

    with pytest.raises(FileExistsError, match="finished run"):
        train(coco_run["cfg"])
    with pytest.raises(FileExistsError, match="already holds a model"):
        train(config(data_root, encoder_weights, run_dir=data_root / "run_new"))
    with pytest.raises(FileExistsError, match="already holds a model"):
        export_run(coco_run["cfg"].run_dir, coco_run["cfg"].export_to)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.captioner import export_run, train

    with pytest.raises(SystemExit) as exit_:
        train.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--data",
        "--kind",
        "--images-dir",
        "--missing-images",
        "--encoder-weights",
        "--feature-cache",
        "--features",
        "--min-count",
        "--max-vocab",
        "--max-len",
        "--embed-dim",
        "--units",
        "--dropout",
        "--steps",
        "--batch-size",
        "--lr",
        "--seed",
        "--eval-every",
        "--held-out",
        "--beam-size",
        "--run-dir",
        "--export-to",
    ):
        assert option in text, option
    with pytest.raises(SystemExit):
        export_run.main(["--help"])
    assert "--run-dir" in capsys.readouterr().out

    cfg = train.parse_args(["--data", "d.json", "--run-dir", "r", "--max-vocab", "0"])
    assert cfg.max_vocab is None and cfg.kind == "auto" and cfg.features == "pooled"
    # A bad data set is a message, not a traceback.
    assert train.main(["--data", str(tmp_path / "nope.json"), "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope.json: no such file" in err


def test_scene_features_train_export_and_caption_with_detections(
    data_root: Path, encoder_weights: Path, tmp_path: Path
) -> None:
    """Real captioned data with the scene captioner's features (issue 20): the cascades run
    while the features are cached, and the export takes detections in `caption_scene`."""
    import tensorflow as tf

    from talkative_common.detectors import Detector
    from training import serving_warmup
    from training.captioner.scene import SCENE_DIM
    from training.captioner.train import train

    cfg = config(
        data_root,
        encoder_weights,
        features="scene",
        run_dir=tmp_path / "run",
        feature_cache=tmp_path / "features.npz",
        export_to=tmp_path / "models" / "captioner" / "1",
    )
    metrics = train(cfg)
    assert metrics["features"]["kind"] == "scene" and metrics["decoder"]["feature_dim"] == SCENE_DIM
    card = json.loads((cfg.export_to / "assets.extra" / "model_card.json").read_text())
    assert card["features"] == "scene" and card["detections"]["signature"] == "caption_scene"
    assert serving_warmup.check_version(cfg.export_to, warmup=False) == []

    loaded = tf.saved_model.load(str(cfg.export_to))
    detector = Detector()
    train_names, _ = split(data_root)
    for name in train_names[:3]:
        data = (data_root / "images" / name).read_bytes()
        # The boxes the feature cache saw: the decoder learnt from scenes with them.
        boxes = detector.detect_photo(data)
        out = loaded.signatures["caption_scene"](
            image_bytes=tf.constant([data]),
            detections=tf.constant(boxes[None]),
            beam_size=tf.constant([3]),
        )
        top = out["captions"].numpy().astype(str)[0, 0]
        own = {w for c in PHOTOS[name][1] for w in tokenize(c)}
        assert tokenize(top) and set(tokenize(top)) <= own, (name, top, boxes[boxes[:, 0] > 0])
        if not boxes.any():  # no box: what the signature that sees none says too
            plain = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
            assert plain["captions"].numpy().tolist() == out["captions"].numpy().tolist()
