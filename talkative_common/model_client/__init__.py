"""How services call models: one interface, several backends (in-process, TF Serving gRPC/REST).

A service asks `ModelClient.predict(model, inputs, signature=...)` with numpy arrays
and gets numpy arrays back; it never knows whether the model runs in its own process
or in TensorFlow Serving. Contracts (DESIGN.md) are checked against the backend's
signature metadata before a service declares itself ready. `FollowedVersion` keeps a
service on the version the model server serves (a label's target) and switches,
without a restart, when that moves.
"""

from talkative_common.model_client.base import (
    ContractMismatch,
    ModelClient,
    ModelNotFound,
    ModelUnavailable,
)
from talkative_common.model_client.contracts import (
    CAPTION_SCENE,
    CAPTIONER,
    GENERATE,
    GENERATE_CONTROLLED,
    SignatureContract,
)
from talkative_common.model_client.factory import create_model_client
from talkative_common.model_client.followed import FollowedVersion, version_poll_interval
from talkative_common.model_client.repository import ModelRepository
from talkative_common.model_client.types import Inputs, Outputs, SignatureInfo, TensorInfo

__all__ = [
    "CAPTIONER",
    "CAPTION_SCENE",
    "GENERATE",
    "GENERATE_CONTROLLED",
    "ContractMismatch",
    "FollowedVersion",
    "Inputs",
    "ModelClient",
    "ModelNotFound",
    "ModelRepository",
    "ModelUnavailable",
    "Outputs",
    "SignatureContract",
    "SignatureInfo",
    "TensorInfo",
    "create_model_client",
    "version_poll_interval",
]
