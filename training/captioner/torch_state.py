"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without PyTorch.

The offline EfficientNet-Lite0 weights ship as such a file. Its layout is a run of
pickles: magic number, protocol version, system info, the state dict (tensors are
`_rebuild_tensor_v2(storage, offset, size, stride)` with storages as persistent
ids), the list of storage keys, then each storage as an int64 element count
followed by its raw little-endian bytes. A restricted unpickler builds numpy
arrays from that and refuses every other global, so reading the file runs no code
from it.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _TensorRef:
    """A tensor before its storage bytes are read: storage key, offset, shape and strides."""

    def __init__(
        self,
        storage: tuple[Any, ...],
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        *_: Any,
    ) -> None:
        self.key, self.offset, self.size, self.stride = str(storage[2]), offset, size, stride


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _TensorRef
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return pid


def _read_storages(f: BinaryIO, keys: list[str], types: dict[str, str]) -> dict[str, np.ndarray]:
    storages = {}
    for key in keys:
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        dtype = np.dtype(_STORAGE_DTYPES[types[key]]).newbyteorder("<")
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"storage {key} is truncated")
        storages[key] = np.frombuffer(data, dtype).astype(dtype.newbyteorder("="))
    return storages


def load_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """{parameter name: numpy array} from a legacy-format `torch.save(state_dict)` file."""
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy PyTorch file (zip files need torch.load)")
        pickle.load(f)  # protocol version
        info = pickle.load(f)
        if not info.get("little_endian", True):
            raise ValueError("big-endian PyTorch files are not supported")
        types: dict[str, str] = {}

        class _Recording(_StateUnpickler):
            def persistent_load(self, pid: Any) -> Any:
                pid = super().persistent_load(pid)
                types[str(pid[2])] = pid[1]
                return pid

        state = _Recording(f).load()
        keys = [str(k) for k in pickle.load(f)]
        storages = _read_storages(f, keys, types)
    out = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise ValueError(f"{name} is not a tensor")
        base = storages[ref.key]
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[ref.offset :], shape=ref.size, strides=[s * item for s in ref.stride]
        )
        out[name] = np.ascontiguousarray(view)
    return out
