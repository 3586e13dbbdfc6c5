"""The backend-neutral interface and the errors every backend raises."""

from __future__ import annotations

from abc import ABC, abstractmethod

from talkative_common.errors import NotFound, TalkativeError, Unavailable
from talkative_common.model_client.types import Inputs, Outputs, SignatureInfo


# Domain errors (talkative_common.errors), so one mapping (problem+json, CLI exit codes) covers
# them; the builtin bases stay for callers that catch those.
class ModelNotFound(NotFound, LookupError):
    """The backend has no such model, version or signature.

    A service that names a model it was configured with turns this into Unavailable: the
    caller did not ask for anything wrong. Reaching an edge as it is, it is a 404.
    """


class ModelUnavailable(Unavailable, RuntimeError):
    """The backend cannot answer now (down, overloaded, past its deadline): worth retrying."""


class ContractMismatch(TalkativeError, RuntimeError):
    """A model's signature does not match the contract its service relies on: a deployment
    fault, neither the caller's nor cured by waiting (a 500 at an edge, exit 1 in the CLI)."""


class ModelClient(ABC):
    """Runs named models. Inputs and outputs are numpy arrays, batch dimension first."""

    backend: str

    @abstractmethod
    async def predict(
        self, model: str, inputs: Inputs, *, signature: str, version: int | None = None
    ) -> Outputs:
        """Run one batch."""

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
