"""Cross-request batching seen from outside, through the official gRPC stubs, with
--enable_batching and a batching_parameters.txt. The `batch` signature answers the rows
it ran with, the width after padding and the sum over the whole batch, so the test can
see exactly what the server merged and padded (batching/batching_session.cc)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from tests.model_server.conftest import Gate
from tests.model_server.grpc_client import Stubs, rpc_error, spec
from tests.support.model_server import ModelServerProcess, wait_until, write_config


def batching_server(tmp_path: Path, probe_version: Path, parameters: str) -> ModelServerProcess:
    shutil.copytree(probe_version, tmp_path / "models" / "probe" / "1")
    params = tmp_path / "batching_parameters.txt"
    params.write_text(parameters, encoding="utf-8")
    config = write_config(tmp_path / "models.config", tmp_path / "models", {"probe": [1]})
    return ModelServerProcess(
        config, extra_flags=["--enable_batching", f"--batching_parameters_file={params}"]
    )


def test_concurrent_requests_share_one_batch_padded_with_the_first_element(tmp_path, probe_version):
    """batching_session.cc MergeInputTensors with pad_variable_length_inputs: three requests
    with prompts of widths 1, 2 and 3 run as one batch of 3 rows of width 3; each shorter
    row is padded at the end with its tensor's first element (batching_util.cc PadTensor),
    and every caller gets back only its own rows."""
    parameters = (
        "max_batch_size { value: 3 }\n"
        "batch_timeout_micros { value: 600000000 }\n"  # the batch closes when full, not on time
        "num_batch_threads { value: 1 }\n"
        "allowed_batch_sizes: 3\n"
        "pad_variable_length_inputs: true\n"
    )
    requests = [
        np.array([[5]], np.int32),
        np.array([[1, 1]], np.int32),
        np.array([[2, 2, 2]], np.int32),
    ]
    with batching_server(tmp_path, probe_version, parameters) as server:
        stubs = Stubs(server.grpc_target)
        try:
            answers = stubs.predict_together(spec("probe", signature="batch"), "ids", requests)
        finally:
            stubs.close()
    assert [a["batch"].tolist() for a in answers] == [[3], [3], [3]]
    assert [a["width"].tolist() for a in answers] == [[3], [3], [3]]
    assert [a["sums"].tolist() for a in answers] == [[15], [3], [6]]  # 5+5+5, 1+1+1, 2+2+2
    assert {int(a["total"][0]) for a in answers} == {24}


def test_batch_padded_to_an_allowed_size_with_the_last_tasks_first_row(tmp_path, probe_version):
    """batching_session.cc MergeInputTensors: a batch of 3 rows is padded up to the next
    allowed_batch_sizes entry (4) with copies of the first row of the batch's last task;
    a request larger than max_batch_size is refused (shared_batch_scheduler.h)."""
    parameters = (
        "max_batch_size { value: 4 }\n"
        "batch_timeout_micros { value: 0 }\n"
        "num_batch_threads { value: 1 }\n"
        "allowed_batch_sizes: 2\n"
        "allowed_batch_sizes: 4\n"
    )
    with batching_server(tmp_path, probe_version, parameters) as server:
        stubs = Stubs(server.grpc_target)
        try:
            ids = np.array([[1, 1], [2, 2], [3, 3]], np.int32)
            out = stubs.predict(spec("probe", signature="batch"), {"ids": ids})
            assert out["batch"].tolist() == [4, 4, 4]
            assert out["total"].tolist() == [14, 14, 14]  # 2 + 4 + 6, plus the padding row [1, 1]
            assert out["sums"].tolist() == [2, 4, 6]
            too_big = np.ones((5, 2), np.int32)
            error = rpc_error(
                lambda: stubs.predict(spec("probe", signature="batch"), {"ids": too_big})
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == "Task size 5 is larger than maximum input batch size 4"
        finally:
            stubs.close()


def test_a_full_queue_is_answered_unavailable(tmp_path, probe_version):
    """shared_batch_scheduler.h Queue::Schedule: with the only batch thread busy and
    max_enqueued_batches batches already waiting, a task that needs a new batch gets
    UNAVAILABLE at once instead of waiting."""
    parameters = (
        "max_batch_size { value: 4 }\n"
        "batch_timeout_micros { value: 0 }\n"
        "max_enqueued_batches { value: 1 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    gate = Gate(tmp_path / "gate")
    with batching_server(tmp_path, probe_version, parameters) as server:
        stubs = Stubs(server.grpc_target)
        results: dict[str, Any] = {}

        def call(key: str, model_spec: Any, inputs: dict[str, np.ndarray]) -> None:
            try:
                results[key] = stubs.predict(model_spec, inputs)
            except grpc.RpcError as exc:
                results[key] = exc

        try:
            held = threading.Thread(
                target=call, args=("held", spec("probe", signature="wait"), {"path": gate.input})
            )
            held.start()
            gate.wait_started(seen=server.log_text)  # the one batch thread is now busy
            # Two tasks that cannot share a batch (3 + 2 rows > 4): one waits, one is refused.
            others = [
                threading.Thread(
                    target=call,
                    args=(k, spec("probe", signature="batch"), {"ids": np.ones((n, 1), np.int32)}),
                )
                for k, n in (("three", 3), ("two", 2))
            ]
            for thread in others:
                thread.start()
            # One of the two is refused at once; the other waits behind the held batch.
            wait_until(
                lambda: (
                    any(isinstance(r, grpc.RpcError) for r in results.values())
                    or not any(t.is_alive() for t in others)
                ),
                "one of the two tasks answered",
                seen=lambda: dict(results),
            )
            gate.release()
            held.join()
            for thread in others:
                thread.join()
        finally:
            gate.release()
            stubs.close()
    errors = [r for r in results.values() if isinstance(r, grpc.RpcError)]
    assert len(errors) == 1, results
    assert errors[0].code() == grpc.StatusCode.UNAVAILABLE
    assert (
        errors[0].details() == "The batch scheduling queue to which this task was submitted is full"
    )
    answered = [k for k, r in results.items() if not isinstance(r, grpc.RpcError)]
    assert "held" in answered and len(answered) == 2, results
