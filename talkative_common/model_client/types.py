"""What a model call exchanges: tensors by name, and the description of a signature.

Apart from the interface (base.py), so that each backend imports the data it handles and
the interface it implements in one line each.
"""

from __future__ import annotations

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


# A model call's tensors by name: numpy arrays, batch dimension first, strings as `bytes`
# objects in object arrays.
Inputs = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]
