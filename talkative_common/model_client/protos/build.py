"""Write `tf_serving.binpb` from the descriptors of the installed TF Serving API (`make protos`).

Runs in the dev virtualenv, where tensorflow-serving-api and tensorflow are installed
(importing them is the point: their generated `*_pb2` modules carry the descriptors).
The services never run this; they read the file it writes (see the package docstring).

    python -m talkative_common.model_client.protos.build [--out PATH] [--check]

The set holds the transitive imports of ROOTS in dependency order (each file after the
files it imports), protobuf's well-known types excepted, serialised deterministically:
the same installed versions always give the same bytes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from talkative_common.cli import command_parser
from talkative_common.model_client.protos import DESCRIPTOR_SET, WELL_KNOWN_PREFIX

# The client API of TF Serving: PredictionService (Predict, GetModelMetadata...) and
# ModelService (GetModelStatus, HandleReloadConfigRequest), with everything they import.
ROOTS = (
    "tensorflow_serving.apis.prediction_service_pb2",
    "tensorflow_serving.apis.model_service_pb2",
)
# The versions the Makefile installs (and the committed file was built from).
PINNED = {"tensorflow-serving-api": "2.21.0", "tensorflow": "2.21.0"}


def _installed_versions() -> dict[str, str]:
    import tensorflow as tf  # already imported by the _pb2 modules: no extra cost

    return {
        "tensorflow-serving-api": importlib.metadata.version("tensorflow-serving-api"),
        "tensorflow": str(tf.__version__),
    }


def _in_dependency_order(roots: Iterable[Any]) -> list[Any]:
    """Every FileDescriptor reachable from roots, each after the files it imports."""
    order: list[Any] = []
    seen: set[str] = set()

    def visit(file: Any) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        order.append(file)

    for root in roots:
        visit(root)
    return order


def build(roots: Sequence[str] = ROOTS) -> bytes:
    """The FileDescriptorSet of roots and their imports, as the installed packages define them."""
    modules = [importlib.import_module(name) for name in roots]
    files = descriptor_pb2.FileDescriptorSet()
    for file in _in_dependency_order(module.DESCRIPTOR for module in modules):
        if file.name.startswith(WELL_KNOWN_PREFIX):
            continue  # the protobuf runtime's own, added from it at load time
        # serialized_pb: the exact bytes the generated module registers
        files.file.add().MergeFromString(file.serialized_pb)
    data: bytes = files.SerializeToString(deterministic=True)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """Write the FileDescriptorSet of TF Serving's client API (taken from the installed
    tensorflow-serving-api and tensorflow packages) that the gRPC client loads without
    TensorFlow."""
    parser = command_parser(main)
    parser.add_argument(
        "--out",
        type=Path,
        default=DESCRIPTOR_SET,
        help=f"where to write the descriptor set (default: {DESCRIPTOR_SET})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file at --out differs from a fresh build",
    )
    parser.add_argument(
        "--any-version",
        action="store_true",
        help=f"build even if the installed packages are not the pinned versions {PINNED}",
    )
    args = parser.parse_args(argv)

    data = build()
    installed = _installed_versions()
    if installed != PINNED and not args.any_version:
        print(
            f"installed {installed}, pinned {PINNED}: the committed file is built from the "
            "pinned versions (update PINNED and the Makefile together, or pass --any-version)",
            file=sys.stderr,
        )
        return 2
    if args.check:
        current = args.out.read_bytes() if args.out.exists() else b""
        if current != data:
            print(f"{args.out} is stale: run `make protos`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(data)} bytes)")
        return 0
    args.out.write_bytes(data)
    count = len(descriptor_pb2.FileDescriptorSet.FromString(data).file)
    print(f"wrote {args.out}: {count} .proto files, {len(data)} bytes, from {installed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
