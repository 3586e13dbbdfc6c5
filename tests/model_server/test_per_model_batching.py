"""--enable_per_model_batching_parameters, seen from outside through the official gRPC stubs.

TF Serving (model_servers/main.cc, server.cc; servables/tensorflow/bundle_factory_util.cc
GetPerModelBatchingParams and kBatchingParamsFilename; saved_model_bundle_factory.cc):
with the flag and --enable_batching, each version's `batching_params.pbtxt`, in the
SavedModel folder beside saved_model.pb, gives its batching; a version without the file
is not batched at all; --batching_parameters_file then only sets the batch thread pool,
shared by every batched model. docker-compose.yml relies on the second rule: the
captioner has no file, so long text generations holding the batch threads never hold up
a caption.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tests.model_server.conftest import Gate
from tests.model_server.grpc_client import Stubs, spec
from tests.support.model_server import ModelServerProcess, write_config


def per_model_server(
    tmp_path: Path, probe_version: Path, global_params: str, per_model: dict[str, str | None]
) -> ModelServerProcess:
    """One probe copy per model name; a per-model file where its text is not None."""
    repository = tmp_path / "models"
    for name, text in per_model.items():
        version_dir = repository / name / "1"
        shutil.copytree(probe_version, version_dir)
        if text is not None:
            (version_dir / "batching_params.pbtxt").write_text(text, encoding="utf-8")
    params = tmp_path / "batching_parameters.txt"
    params.write_text(global_params, encoding="utf-8")
    config = write_config(tmp_path / "models.config", repository, {name: [1] for name in per_model})
    return ModelServerProcess(
        config,
        extra_flags=[
            "--enable_batching",
            f"--batching_parameters_file={params}",
            "--enable_per_model_batching_parameters",
        ],
    )


def test_each_version_batches_with_its_own_file_and_without_one_is_not_batched(
    tmp_path, probe_version
):
    """The global file would pad every batch to 4 rows; `probe`'s own file makes three
    concurrent requests one batch of 3 (padded to the widest, 3), and `plain`, which has
    no file, runs a request as it came: 1 row. The per-model num_batch_threads of 0,
    invalid for a thread pool, is ignored, as upstream ignores it."""
    global_params = (
        "max_batch_size { value: 4 }\n"
        "batch_timeout_micros { value: 0 }\n"
        "num_batch_threads { value: 1 }\n"
        "allowed_batch_sizes: 4\n"
    )
    probe_params = (
        "max_batch_size { value: 3 }\n"
        "batch_timeout_micros { value: 600000000 }\n"  # closes when full, not on time
        "num_batch_threads { value: 0 }\n"
        "allowed_batch_sizes: 3\n"
        "pad_variable_length_inputs: true\n"
    )
    requests = [np.full((1, width), width, np.int32) for width in (1, 2, 3)]
    server = per_model_server(
        tmp_path, probe_version, global_params, {"probe": probe_params, "plain": None}
    )
    with server:
        stubs = Stubs(server.grpc_target)
        try:
            batched = stubs.predict_together(spec("probe", signature="batch"), "ids", requests)
            alone = stubs.predict(spec("plain", signature="batch"), {"ids": requests[1]})
        finally:
            stubs.close()
        log = server.log_text()
    assert [a["batch"].tolist() for a in batched] == [[3], [3], [3]]
    assert [a["width"].tolist() for a in batched] == [[3], [3], [3]]
    assert alone["batch"].tolist() == [1] and alone["width"].tolist() == [2]
    assert "{name: probe version: 1}: batched with its batching_params.pbtxt" in log
    assert "{name: plain version: 1}: not batched" in log


def test_a_model_without_a_file_is_never_held_behind_the_batch_threads(tmp_path, probe_version):
    """The one batch thread is held by a `probe` batch (the `wait` signature, released by
    the test); `probe`'s next request waits behind it, but `plain` (no file: the
    captioner's case in docker-compose.yml) is answered while the thread is still held."""
    global_params = "num_batch_threads { value: 1 }\n"
    probe_params = "max_batch_size { value: 4 }\nbatch_timeout_micros { value: 0 }\n"
    gate = Gate(tmp_path / "gate")
    server = per_model_server(
        tmp_path, probe_version, global_params, {"probe": probe_params, "plain": None}
    )
    with server:
        stubs = Stubs(server.grpc_target)
        results: dict[str, Any] = {}

        def call(key: str, model: str, signature: str, inputs: dict[str, np.ndarray]) -> None:
            results[key] = stubs.predict(spec(model, signature=signature), inputs)

        ids = {"ids": np.ones((1, 2), np.int32)}
        held = threading.Thread(target=call, args=("held", "probe", "wait", {"path": gate.input}))
        queued = threading.Thread(target=call, args=("queued", "probe", "batch", ids))
        try:
            held.start()
            gate.wait_started(seen=server.log_text)  # the batch thread is busy from now on
            queued.start()
            answer = stubs.predict(spec("plain", signature="batch"), ids, timeout=60)
            assert answer["batch"].tolist() == [1]
            assert held.is_alive() and "queued" not in results  # still held: plain went round
        finally:
            gate.release()
            held.join(timeout=60)
            queued.join(timeout=60)
            stubs.close()
    assert results["queued"]["batch"].tolist() == [1]


def test_a_bad_per_model_file_fails_the_load(tmp_path, probe_version):
    """bundle_factory_util.cc WrapSessionForBatching's check, on the per-model file: the
    version does not load, so the server does not start, and the log says which file."""
    global_params = "num_batch_threads { value: 1 }\n"
    bad = "max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n"
    server = per_model_server(tmp_path, probe_version, global_params, {"probe": bad})
    code, log = server.run_to_exit()
    assert code != 0
    assert "batching_params.pbtxt" in log
    assert "Last entry in allowed_batch_sizes must match max_batch_size" in log
