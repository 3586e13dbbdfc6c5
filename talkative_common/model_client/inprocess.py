"""In-process backend: the SavedModels of the repository loaded into this process.

Used on a laptop and in tests. Graph calls run in worker threads (TensorFlow
releases the GIL), bounded by a semaphore so a burst cannot pile up unbounded
work, and each call has a deadline like a remote backend would.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import numpy as np

from talkative_common.model_client.base import ModelClient, ModelNotFound, ModelUnavailable
from talkative_common.model_client.repository import ModelRepository
from talkative_common.model_client.types import Inputs, Outputs, SignatureInfo, TensorInfo
from talkative_common.quiet_tensorflow import import_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # for whatever imports TensorFlow first


def _tf() -> Any:
    # Imported on first use: services that only route never pay for it.
    return import_tensorflow()


class InProcessClient(ModelClient):
    backend = "inprocess"

    def __init__(
        self,
        repository: ModelRepository,
        *,
        timeout_s: float = 60.0,
        max_parallel: int = 4,
        default_version: int | None = None,
    ) -> None:
        self.repository, self.timeout_s = repository, timeout_s
        self.default_version = default_version  # used when a call names no version
        self._loaded: dict[tuple[str, int], Any] = {}
        self._load_lock = threading.Lock()
        self._slots = asyncio.Semaphore(max_parallel)

    def _load(self, model: str, version: int | None) -> Any:
        key = (model, self.repository.resolve(model, version or self.default_version))
        with self._load_lock:
            if key not in self._loaded:
                self._loaded[key] = _tf().saved_model.load(str(self.repository.path(*key)))
            return self._loaded[key]

    def _function(self, model: str, signature: str, version: int | None) -> Any:
        loaded = self._load(model, version)
        try:
            return loaded.signatures[signature]
        except KeyError:
            raise ModelNotFound(
                f"model {model!r} has no signature {signature!r} (has {sorted(loaded.signatures)})"
            ) from None

    async def served_version(self, model: str) -> int:
        return self.repository.resolve(model, self.default_version)

    async def load(self, model: str, version: int | None = None) -> None:
        """Load ahead of the first request (warm-up)."""
        await asyncio.to_thread(self._load, model, version)

    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        fn = await asyncio.to_thread(self._function, model, signature, version)
        _, kwargs = fn.structured_input_signature
        return SignatureInfo(
            inputs={k: _info(v) for k, v in kwargs.items()},
            outputs={k: _info(v) for k, v in fn.structured_outputs.items()},
        )

    async def predict(
        self, model: str, inputs: Inputs, *, signature: str, version: int | None = None
    ) -> Outputs:
        fn = await asyncio.to_thread(self._function, model, signature, version)

        def run() -> dict[str, np.ndarray]:
            tf = _tf()
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in outputs.items()}

        async with self._slots:
            try:
                return await asyncio.wait_for(asyncio.to_thread(run), timeout=self.timeout_s)
            except TimeoutError:
                raise ModelUnavailable(
                    f"model {model!r} did not answer within {self.timeout_s:g} s"
                ) from None

    async def close(self) -> None:
        self._loaded.clear()


def _info(spec: Any) -> TensorInfo:
    dtype = "string" if spec.dtype.name == "string" else spec.dtype.name
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(dtype=dtype, shape=shape)
