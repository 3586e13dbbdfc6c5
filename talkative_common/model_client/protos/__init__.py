"""TF Serving's protobuf API for the gRPC and REST clients, without TensorFlow.

The messages a client sends and reads (`PredictRequest`, `TensorProto`,
`GetModelMetadataResponse`...) are defined in TF Serving's and TensorFlow's .proto files.
The official Python classes live in `tensorflow-serving-api` and in `tensorflow`
itself; importing any of them (`tensorflow.core.framework.tensor_pb2`) imports the
`tensorflow` package first, which loads the whole runtime: seconds of start-up and
hundreds of MB of RSS in a service that never runs a graph.

So the descriptors are taken from those official packages once, at build time, and
kept as data:

- `tf_serving.binpb`: one binary `FileDescriptorSet` (the format of `protoc
  --descriptor_set_out`) holding every .proto file that TF Serving's
  `prediction_service.proto` and `model_service.proto` need, byte for byte as the
  installed `*_pb2` modules of tensorflow-serving-api 2.21.0 and tensorflow 2.21.0
  embed them (`DESCRIPTOR.serialized_pb`). Protobuf's own well-known types
  (`google/protobuf/any.proto`, `wrappers.proto`) are left out: every protobuf runtime
  ships them, and the file then depends only on the two pinned TensorFlow packages.
  It is committed; `make protos` (`python -m talkative_common.model_client.protos.build`)
  rebuilds it in the dev virtualenv, and a test checks that the rebuild gives the same
  bytes.
- `tf_serving` (the module): builds the message classes from that file at import time
  (about 2 ms), in a private `DescriptorPool`, and names the gRPC methods the clients
  call with `channel.unary_unary(path, ...)` instead of generated stubs.

Why not generated `_pb2.py` files (protoc reads a descriptor set too)? They would be
copies of generated code to keep in step with protobuf's runtime version, and they
would register TensorFlow's symbols in the default pool, where they clash with
TensorFlow's own classes when both are loaded in one process (the dev virtualenv, the
tests, the in-process backend). A private pool never clashes; the wire format is the
same, so a message serialised by one pool's class parses in the other's.
"""

from pathlib import Path

# The committed descriptor set (see above); `make protos` rewrites it.
DESCRIPTOR_SET = Path(__file__).with_name("tf_serving.binpb")
# Protobuf's well-known types: not in the set, taken from the installed protobuf runtime.
WELL_KNOWN_PREFIX = "google/protobuf/"
