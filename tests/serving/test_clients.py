"""The gRPC and REST backends against a server speaking TF Serving's protocols, and in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from talkative_common.model_client import GENERATE, ModelNotFound, ModelUnavailable
from talkative_common.model_client.tensors import from_tensor_proto, to_tensor_proto
from tests.serving.conftest import make_client
from tests.support.model_server import ModelServerProcess, serve_repository, write_config

BACKENDS = ["inprocess", "grpc", "rest"]


def generate_inputs() -> dict[str, np.ndarray]:
    """Two rows that differ in every knob, the first right-padded."""
    return {
        "prompt_ids": np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], np.int32),
        "prompt_lengths": np.array([3, 5], np.int32),
        "max_new_tokens": np.array([12, 7], np.int32),
        "temperature": np.array([0.8, 0.0], np.float32),
        "top_k": np.array([5, 0], np.int32),
        "top_p": np.array([0.9, 1.0], np.float32),
        "seed": np.array([2**62 + 11, 3], np.int64),
    }


def run(backend: str, server: ModelServerProcess, repo: Path, coro_fn, **options):
    async def go():
        client = make_client(backend, server, repo, **options)
        try:
            return await coro_fn(client)
        finally:
            await client.close()

    return asyncio.run(go())


def test_outputs_identical_across_backends(model_server, tiny_repository):
    async def predict(client):
        return await client.predict("tiny_en", generate_inputs(), signature="generate")

    results = {b: run(b, model_server, tiny_repository, predict) for b in BACKENDS}
    reference = results["inprocess"]
    assert reference["token_ids"].shape == (2, 12)
    assert list(reference["lengths"]) == [12, 7]
    for backend in ("grpc", "rest"):
        out = results[backend]
        assert set(out) == set(reference)
        for key, value in reference.items():
            assert out[key].dtype == value.dtype, (backend, key)
            np.testing.assert_array_equal(out[key], value, err_msg=f"{backend} {key}")


def test_signature_metadata_identical_and_meets_contract(model_server, tiny_repository):
    async def describe(client):
        return await client.signature("tiny_en", "generate")

    infos = {b: run(b, model_server, tiny_repository, describe) for b in BACKENDS}
    for backend, info in infos.items():
        GENERATE.check("tiny_en", info)
        assert info == infos["inprocess"], backend
    assert infos["grpc"].inputs["prompt_ids"].shape == (None, None)


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_unknown_model_version_signature_are_not_found(backend, model_server, tiny_repository):
    async def attempts(client):
        errors = []
        for call in (
            client.signature("nope", "generate"),
            client.signature("tiny_en", "generate", version=7),
            client.signature("tiny_en", "no_such_signature"),
            client.predict("nope", generate_inputs(), signature="generate"),
        ):
            with pytest.raises(ModelNotFound) as info:
                await call
            errors.append(str(info.value))
        return errors

    errors = run(backend, model_server, tiny_repository, attempts, retries=0)
    assert "nope" in errors[0] and "7" in errors[1] and "no_such_signature" in errors[2]


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_bad_request_is_a_client_bug_not_an_outage(backend, model_server, tiny_repository):
    bad = generate_inputs() | {"temperature": np.array([0.8, 0.0], np.float64)}

    async def call(client):
        await client.predict("tiny_en", bad, signature="generate")

    if backend == "rest":  # JSON carries no dtype: the server casts to the signature's type
        run(backend, model_server, tiny_repository, call)
        bad.pop("seed")
    with pytest.raises(ValueError, match=r"seed|temperature"):
        run(backend, model_server, tiny_repository, call, retries=0)


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_version_labels_select_the_served_version(backend, two_version_repository, tmp_path):
    labels = {"tiny_en": {"stable": 1, "canary": 2}}
    config = write_config(
        tmp_path / "models.config", two_version_repository, {"tiny_en": [1, 2]}, labels
    )
    with ModelServerProcess(config) as server:

        async def versions(client):
            return await client.served_version("tiny_en")

        assert run(backend, server, two_version_repository, versions) == 2  # newest
        assert run(backend, server, two_version_repository, versions, version_label="stable") == 1
        assert run(backend, server, two_version_repository, versions, version_label="canary") == 2
        assert run(backend, server, two_version_repository, versions, default_version=1) == 1

        async def predict(client):
            return await client.predict("tiny_en", generate_inputs(), signature="generate")

        out = run(backend, server, two_version_repository, predict, version_label="stable")
        assert out["token_ids"].shape == (2, 12)
        with pytest.raises(ModelNotFound, match="label"):
            run(backend, server, two_version_repository, predict, version_label="beta")


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_server_down_is_unavailable_after_retries(backend, tiny_repository, tmp_path):
    server = serve_repository(tiny_repository, tmp_path)  # never started: nothing listens

    async def describe(client):
        await client.signature("tiny_en", "generate")

    with pytest.raises(ModelUnavailable, match="3 attempts"):
        run(backend, server, tiny_repository, describe, retries=2, backoff_s=0.01)


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_slow_server_hits_the_deadline(backend, model_server, tiny_repository):
    async def predict(client):
        return await client.predict("tiny_en", generate_inputs(), signature="generate")

    model_server.hold()
    try:
        with pytest.raises(ModelUnavailable):
            run(backend, model_server, tiny_repository, predict, timeout_s=0.3)
    finally:
        model_server.release()
    assert run(backend, model_server, tiny_repository, predict)["token_ids"].shape == (2, 12)


@pytest.mark.parametrize(
    "array",
    [
        np.array([[1, -2], [3, 4]], np.int32),
        np.array([1.5, -0.25, np.inf], np.float32),
        np.array([2**62 + 1, -5], np.int64),
        np.array([True, False]),
        np.array([0.1, 2.5], np.float16),
        np.array([[b"\xff\x00jpeg", b""], [b"a", "\u00e9t\u00e9".encode()]], dtype=object),
        np.zeros((0, 3), np.float32),
    ],
)
def test_tensor_protos_agree_with_tensorflow(array):
    proto = to_tensor_proto(array)
    back = tf.make_ndarray(proto)
    np.testing.assert_array_equal(back, array)
    theirs = tf.make_tensor_proto(array)
    ours = from_tensor_proto(theirs)
    assert ours.dtype == array.dtype and ours.shape == array.shape
    np.testing.assert_array_equal(ours, array)


def test_typed_value_fields_and_constant_fill_are_read():
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    def shape(*dims):
        return tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        )

    ints = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_INT32, tensor_shape=shape(2, 2), int_val=[1, 2, 3, 4]
    )
    np.testing.assert_array_equal(from_tensor_proto(ints), np.array([[1, 2], [3, 4]], np.int32))
    filled = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(3), float_val=[0.5]
    )
    np.testing.assert_array_equal(from_tensor_proto(filled), np.full(3, 0.5, np.float32))
    broken = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_INT64, tensor_shape=shape(3), int64_val=[1, 2]
    )
    with pytest.raises(ValueError):
        from_tensor_proto(broken)
