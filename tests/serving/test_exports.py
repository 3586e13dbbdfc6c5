"""Every exported model fits a stock TF Serving: core ops, batch dimension first, warm-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from training import serving_warmup
from training.serving_warmup import WARMUP_FILE, read_requests, version_dirs, write_warmup

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "serving"
SERVED = version_dirs(SERVING / "models")


@pytest.fixture(scope="module")
def tiny_version(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny char-LSTM with its warm-up requests written."""
    version = tmp_path_factory.mktemp("warm") / "tiny_en" / "1"
    shutil.copytree(tiny_repository / "tiny_en" / "1", version)
    write_warmup(version, (1, 3))
    return version


def test_warmup_has_one_request_per_signature_and_batch_size(tiny_version):
    logs = read_requests(tiny_version / "assets.extra" / WARMUP_FILE)
    signatures = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert signatures == ["generate", "generate", "serving_default", "serving_default"]
    batches = [
        log.predict_log.request.inputs["prompt_ids"].tensor_shape.dim[0].size for log in logs
    ]
    assert batches == [1, 3, 1, 3]
    assert all(log.predict_log.request.model_spec.name == "tiny_en" for log in logs)
    assert serving_warmup.replay(tiny_version, logs) == 4
    with pytest.raises(FileExistsError):
        write_warmup(tiny_version, (1,))


def test_warmup_cli_refuses_bad_arguments(tiny_version, capsys):
    assert serving_warmup.main([str(tiny_version)]) == 1  # exists already, no --force
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        serving_warmup.main(["--batch-sizes", "0", str(tiny_version)])
    with pytest.raises(SystemExit):
        serving_warmup.main([])


def check_without_keras(versions: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run --check in a fresh interpreter where importing Keras fails, as in TF Serving."""
    code = (
        "import sys; sys.modules['keras'] = sys.modules['tf_keras'] = None\n"
        "import tensorflow as tf\n"
        "from training.serving_warmup import main\n"
        "for path in sys.argv[1:]:\n"
        "    tf.saved_model.load(path)\n"
        "raise SystemExit(main(['--check', *sys.argv[1:]]))\n"
    )
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, versions)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_every_model_loads_without_keras_with_core_ops_and_batch_first(tiny_version):
    result = check_without_keras([tiny_version, *SERVED])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("fits TF Serving") == 1 + len(SERVED)


def test_check_reports_what_tf_serving_would_refuse(tiny_repository, tmp_path):
    import tensorflow as tf

    class Unbatchable(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="x")])
        def scale(self, x):
            return {"y": x * 2.0}

    path = tmp_path / "scalar" / "1"
    module = Unbatchable()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.scale})
    problems = serving_warmup.check_version(path)
    assert any("'x' has no batch dimension" in p for p in problems)
    assert any("model_card.json" in p for p in problems)
    assert any(WARMUP_FILE in p for p in problems)


def test_check_finds_ops_a_stock_server_lacks(tiny_version, tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    forged = tmp_path / "tiny_en" / "1"
    shutil.copytree(tiny_version, forged)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((forged / "saved_model.pb").read_bytes())
    node = next(
        n
        for f in proto.meta_graphs[0].graph_def.library.function
        for n in f.node_def
        if n.op == "MatMul"
    )
    node.op = "SentencepieceOp"  # what tensorflow-text would leave in a graph
    (forged / "saved_model.pb").write_bytes(proto.SerializeToString())
    assert serving_warmup.check_version(tiny_version) == []
    assert serving_warmup.check_version(forged) == [
        "ops outside core TensorFlow: ['SentencepieceOp']"
    ]


def models_config() -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((SERVING / "models.config").read_text(), config)
    return config


def test_models_config_parses_and_labels_served_versions():
    config = models_config()
    entries = {c.name: c for c in config.model_config_list.config}
    assert entries, "models.config lists no model"
    for name, entry in entries.items():
        assert entry.base_path == f"/models/{name}", name
        assert entry.model_platform == "tensorflow"
        policy = entry.model_version_policy
        assert policy.WhichOneof("policy_choice") == "specific", name
        served = set(policy.specific.versions)
        assert set(entry.version_labels) == {"stable", "canary"}, name
        assert set(entry.version_labels.values()) <= served, name


def test_models_config_and_repository_agree():
    on_disk: dict[str, set[int]] = {p.parent.name: set() for p in SERVED}
    for version in SERVED:
        on_disk[version.parent.name].add(int(version.name))
    if not on_disk:
        pytest.skip("serving/models holds no model yet (make models)")
    entries = {c.name: c for c in models_config().model_config_list.config}
    assert set(on_disk) <= set(entries), "a model on disk that TF Serving would never serve"
    missing = {
        name: sorted(set(e.model_version_policy.specific.versions) - on_disk.get(name, set()))
        for name, e in entries.items()
    }
    assert not any(missing.values()), f"models.config names versions not on disk: {missing}"
