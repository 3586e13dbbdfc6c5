"""The descriptor set of TF Serving's API (talkative_common/model_client/protos) and its classes.

The committed tf_serving.binpb must be what `make protos` writes from the installed
official packages (the dev virtualenv has them), and the classes built from it must
speak the same wire format as the official ones, in both directions.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import descriptor_pb2

from talkative_common.model_client.protos import DESCRIPTOR_SET, WELL_KNOWN_PREFIX, build
from talkative_common.model_client.protos import tf_serving as pb
from talkative_common.model_client.tensors import from_tensor_proto, to_tensor_proto

official = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2")


def test_committed_descriptor_set_is_what_make_protos_writes():
    assert DESCRIPTOR_SET.read_bytes() == build.build(), (
        "talkative_common/model_client/protos/tf_serving.binpb is stale: run `make protos`"
    )
    assert build.main(["--check"]) == 0


def test_the_set_holds_the_api_in_dependency_order_without_well_known_types():
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    names = [f.name for f in files]
    assert len(names) == len(set(names))
    for wanted in (
        "tensorflow_serving/apis/prediction_service.proto",
        "tensorflow_serving/apis/predict.proto",
        "tensorflow_serving/apis/get_model_metadata.proto",
        "tensorflow_serving/apis/get_model_status.proto",
        "tensorflow_serving/apis/model_service.proto",
        "tensorflow/core/framework/tensor.proto",
        "tensorflow/core/framework/types.proto",
        "tensorflow/core/protobuf/meta_graph.proto",
    ):
        assert wanted in names
    assert not [n for n in names if n.startswith(WELL_KNOWN_PREFIX)]
    for position, file in enumerate(files):  # each file after the files it imports
        local = [d for d in file.dependency if not d.startswith(WELL_KNOWN_PREFIX)]
        assert set(local) <= set(names[:position]), file.name


def test_classes_live_in_a_private_pool_beside_tensorflows():
    from google.protobuf import descriptor_pool
    from tensorflow.core.framework import tensor_pb2

    assert pb.POOL is not descriptor_pool.Default()
    assert pb.TensorProto is not tensor_pb2.TensorProto
    assert pb.TensorProto.DESCRIPTOR.full_name == tensor_pb2.TensorProto.DESCRIPTOR.full_name


def test_methods_match_the_official_services():
    from tensorflow_serving.apis import model_service_pb2

    for method, service, name in (
        (pb.PREDICT, official.DESCRIPTOR.services_by_name["PredictionService"], "Predict"),
        (
            pb.GET_MODEL_METADATA,
            official.DESCRIPTOR.services_by_name["PredictionService"],
            "GetModelMetadata",
        ),
        (
            pb.GET_MODEL_STATUS,
            model_service_pb2.DESCRIPTOR.services_by_name["ModelService"],
            "GetModelStatus",
        ),
    ):
        theirs = service.methods_by_name[name]
        assert method.path == f"/{service.full_name}/{name}"
        assert method.request.DESCRIPTOR.full_name == theirs.input_type.full_name
        assert method.response.DESCRIPTOR.full_name == theirs.output_type.full_name


def test_data_type_numbers_match_tensorflows():
    from tensorflow.core.framework import types_pb2

    for name, number in types_pb2.DataType.items():
        assert pb.DataTypes.number(name) == number
        assert pb.DataTypes.name(number) == name


def test_requests_and_answers_cross_between_ours_and_the_official_classes():
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

    ours = pb.PredictRequest()
    ours.model_spec.name = "captioner"
    ours.model_spec.version_label = "stable"
    ours.inputs["image_bytes"].CopyFrom(to_tensor_proto(np.array([b"\xff\xd8jpeg"], object)))
    ours.inputs["beam"].CopyFrom(to_tensor_proto(np.array([3, 5], np.int32)))
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.version_label == "stable"
    assert list(theirs.inputs["image_bytes"].string_val) == [b"\xff\xd8jpeg"]
    assert theirs.SerializeToString(deterministic=True) == ours.SerializeToString(
        deterministic=True
    )

    # An answer as the model server writes it, SignatureDefMap packed in an Any.
    signatures = get_model_metadata_pb2.SignatureDefMap()
    signatures.signature_def["generate"].inputs["seed"].dtype = 9  # DT_INT64
    answer = get_model_metadata_pb2.GetModelMetadataResponse()
    answer.model_spec.version.value = 4
    answer.metadata["signature_def"].Pack(signatures)
    read = pb.GetModelMetadataResponse.FromString(answer.SerializeToString())
    unpacked = pb.SignatureDefMap()
    assert read.metadata["signature_def"].Unpack(unpacked)
    assert read.model_spec.version.value == 4
    assert unpacked.signature_def["generate"].inputs["seed"].dtype == 9


def test_unknown_data_types_are_refused():
    with pytest.raises(TypeError, match="DT_INVALID"):
        from_tensor_proto(pb.TensorProto())
    with pytest.raises(TypeError, match="DT_UNKNOWN_999"):
        from_tensor_proto(pb.TensorProto(dtype=999))


def test_importing_the_classes_imports_no_tensorflow():
    code = (
        "import sys; from talkative_common.model_client.protos import tf_serving; "
        "import talkative_common.model_client.grpc; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tensorflow_serving', 'keras')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
