"""How services call models: one interface, several backends (in-process SavedModel today).

A service asks `ModelClient.predict(model, inputs, signature=...)` with numpy arrays
and gets numpy arrays back; it never knows whether the model runs in its own process
or in TensorFlow Serving. Contracts (DESIGN.md) are checked against the backend's
signature metadata before a service declares itself ready.
"""

from services.model_client.base import (
    ContractMismatch,
    ModelClient,
    ModelNotFound,
    ModelUnavailable,
    SignatureInfo,
    TensorInfo,
)
from services.model_client.contracts import CAPTIONER, GENERATE, SignatureContract
from services.model_client.factory import create_model_client
from services.model_client.repository import ModelRepository

__all__ = [
    "CAPTIONER",
    "GENERATE",
    "ContractMismatch",
    "ModelClient",
    "ModelNotFound",
    "ModelRepository",
    "ModelUnavailable",
    "SignatureContract",
    "SignatureInfo",
    "TensorInfo",
    "create_model_client",
]
