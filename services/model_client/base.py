"""The backend-neutral interface and the errors every backend raises."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # numpy name: "int32", "float32", "int64", "string"
    shape: tuple[int | None, ...] | None  # None = unknown rank


@dataclass(frozen=True)
class SignatureInfo:
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]


class ModelNotFound(LookupError):
    """The backend has no such model, version or signature."""


class ModelUnavailable(RuntimeError):
    """The backend cannot answer now (down, overloaded, past its deadline): worth retrying."""


class ContractMismatch(RuntimeError):
    """A model's signature does not match the contract its service relies on."""


class ModelClient(ABC):
    """Runs named models. Inputs and outputs are numpy arrays, batch dimension first."""

    backend: str

    @abstractmethod
    async def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        signature: str,
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Run one batch. Strings are `bytes` objects in object arrays."""

    @abstractmethod
    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        """The backend's own description of a signature (TF Serving: GetModelMetadata)."""

    async def served_version(self, model: str) -> int:
        """The version a call that names none reaches (pinned version, label, else newest).

        Pass it to every call, so that the graph and the files a service reads beside it
        (model card, vocabulary) come from the same version; `FollowedVersion` re-reads it
        to notice a label that moves.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot tell which version it serves")

    async def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections or loaded graphs."""
