"""Calls to a model server through the official tensorflow-serving-api stubs, for the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)


def spec(
    name: str, version: int | None = None, label: str | None = None, signature: str = ""
) -> Any:
    out = model_pb2.ModelSpec(name=name, signature_name=signature)
    if version is not None:
        out.version.value = version
    if label is not None:
        out.version_label = label
    return out


class Stubs:
    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def predict_raw(self, model_spec: Any, inputs: Mapping[str, Any], timeout: float = 60) -> Any:
        request = predict_pb2.PredictRequest(model_spec=model_spec)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return self.prediction.Predict(request, timeout=timeout)

    def predict(
        self, model_spec: Any, inputs: Mapping[str, Any], timeout: float = 60
    ) -> dict[str, np.ndarray]:
        response = self.predict_raw(model_spec, inputs, timeout)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def predict_together(
        self, model_spec: Any, name: str, values: Sequence[np.ndarray]
    ) -> list[dict[str, np.ndarray]]:
        """One request per value (as input `name`), all sent at once from their own threads
        so that the server may batch them; the answers in the order of `values`."""
        with ThreadPoolExecutor(len(values)) as pool:
            return list(pool.map(lambda value: self.predict(model_spec, {name: value}), values))

    def metadata(self, model_spec: Any) -> Any:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_spec, metadata_field=["signature_def"]
        )
        return self.prediction.GetModelMetadata(request, timeout=30)

    def signatures(self, model_spec: Any) -> Any:
        response = self.metadata(model_spec)
        out = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(out)
        return out.signature_def

    def status(self, model_spec: Any) -> dict[int, tuple[str, str]]:
        """version -> (state name, error message), as GetModelStatus answers."""
        response = self.models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec), timeout=30
        )
        return {
            s.version: (
                get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                s.status.error_message,
            )
            for s in response.model_version_status
        }

    def status_or_error(self, name: str) -> dict[int, tuple[str, str]] | str:
        try:
            return self.status(spec(name))
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"

    def label_version(self, name: str, label: str) -> int | str:
        """The version a label resolves to (GetModelMetadata), or the error as text."""
        try:
            return int(self.metadata(spec(name, label=label)).model_spec.version.value)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"

    def reload(self, config: Any) -> Any:
        request = model_management_pb2.ReloadConfigRequest(config=config)
        return self.models.HandleReloadConfigRequest(request, timeout=120)


def rpc_error(call: Any) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded; an error was expected")
