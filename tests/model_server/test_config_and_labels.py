"""models.config parsing and reload, version labels and version states, against the real
`talkative model-server` process through the official gRPC stubs. Each test names the
TF Serving behaviour it pins and the upstream file it comes from."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.model_server.conftest import Gate, add_version
from tests.model_server.grpc_client import Stubs, rpc_error, spec
from tests.support.model_server import (
    ModelServerProcess,
    config_text,
    serve,
    wait_until,
    write_config,
)

BATCH = {"ids": np.ones((1, 2), np.int32)}


@pytest.fixture
def stubs_for():
    opened: list[Stubs] = []

    def make(server: ModelServerProcess) -> Stubs:
        opened.append(Stubs(server.grpc_target))
        return opened[-1]

    yield make
    for stubs in opened:
        stubs.close()


def test_config_is_read_and_reloaded_on_poll(tmp_path, repository, probe_version, stubs_for):
    """server.cc PollFilesystemAndReloadConfig: models.config is re-read every
    --model_config_file_poll_wait_seconds; a newly listed version is loaded and served."""
    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        assert stubs.status(spec("probe")) == {1: ("AVAILABLE", "")}
        add_version(repository, probe_version, 2)
        # On disk but not listed: the `specific` policy does not serve it.
        assert stubs.status(spec("probe")) == {1: ("AVAILABLE", "")}
        write_config(server.config_file, repository, {"probe": [1, 2]})
        wait_until(
            lambda: stubs.status_or_error("probe") == {2: ("AVAILABLE", ""), 1: ("AVAILABLE", "")},
            "version 2 AVAILABLE after the poll",
            seen=lambda: stubs.status_or_error("probe"),
        )
        out = stubs.predict(spec("probe", signature="batch"), BATCH)
        assert out["sums"].tolist() == [2]
        response = stubs.predict_raw(spec("probe", signature="batch"), BATCH)
        assert response.model_spec.version.value == 2  # Latest = highest AVAILABLE


def test_unparsable_config_at_start_exits_with_line_and_column(tmp_path, repository):
    """server.cc BuildAndStart: ParseProtoTextFile fails and the server does not start."""
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list {\n  config {\n    name: "probe"\n    base_pat: "/x"\n  }\n}\n',
        encoding="utf-8",
    )
    code, log = ModelServerProcess(config).run_to_exit()
    assert code != 0, log
    assert f"{config}:4:" in log, log
    assert "base_pat" in log, log


def test_unparsable_config_on_poll_keeps_the_last_good_one(tmp_path, repository, stubs_for):
    """server.cc PollFilesystemAndReloadConfig: a file that fails to parse is logged and the
    running config stays (here: logged once, not at every poll)."""
    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        server.config_file.write_text("model_config_list { config { name: \n", encoding="utf-8")
        wait_until(
            lambda: "Failed to read ModelServerConfig file" in server.log_text(),
            "the parse error in the log",
            seen=server.log_text,
        )
        assert stubs.predict(spec("probe", signature="batch"), BATCH)["sums"].tolist() == [2]
        # Several more polls go by (a reload of a good file shows they ran)...
        write_config(server.config_file, repository, {"probe": [1]}, {"probe": {"stable": 1}})
        wait_until(lambda: stubs.label_version("probe", "stable") == 1, "the fixed file applied")
        errors = [line for line in server.log_text().splitlines() if "Failed to read" in line]
        assert len(errors) == 1, errors
        assert f"{server.config_file}:2:" in errors[0], errors


def test_labels_for_unavailable_versions_need_the_flag_at_start(tmp_path, repository):
    """server_core.cc UpdateModelVersionLabelMap runs before the first load: without
    --allow_version_labels_for_unavailable_models any label fails the start-up."""
    code, log = serve(
        tmp_path,
        repository,
        {"probe": [1]},
        {"probe": {"stable": 1}},
        allow_unavailable_labels=False,
    ).run_to_exit()
    assert code != 0, log
    assert (
        "Request to assign label to version 1 of model probe, which is not currently "
        "available for inference" in log
    ), log


def test_moving_a_label_in_use_onto_an_unloaded_version_is_refused_and_stalls(
    tmp_path, repository, probe_version, stubs_for
):
    """server_core.cc ReloadConfig stores the config, then UpdateModelVersionLabelMap refuses
    to move `stable` onto version 2 (not AVAILABLE; the flag covers new labels only). The
    old labels and versions keep serving, version 2 is never loaded, every poll fails the
    same way; listing 2 first, then moving the label, works."""
    add_version(repository, probe_version, 2)
    with serve(tmp_path, repository, {"probe": [1]}, {"probe": {"stable": 1}}) as server:
        stubs = stubs_for(server)
        write_config(server.config_file, repository, {"probe": [1, 2]}, {"probe": {"stable": 2}})
        wait_until(
            lambda: "which is not currently available for inference" in server.log_text(),
            "the refusal in the log",
            seen=server.log_text,
        )
        assert stubs.label_version("probe", "stable") == 1
        assert stubs.status(spec("probe")) == {1: ("AVAILABLE", "")}  # 2 never loaded
        # A new label may point at an unavailable version with the flag; a label that stays
        # where it is, too. Listing 2 is still blocked by the `stable` move in the same file.
        write_config(server.config_file, repository, {"probe": [1, 2]}, {"probe": {"stable": 1}})
        wait_until(
            lambda: stubs.status_or_error("probe") == {2: ("AVAILABLE", ""), 1: ("AVAILABLE", "")},
            "version 2 loaded once the edit lists it without moving the label",
            seen=lambda: stubs.status_or_error("probe"),
        )
        write_config(server.config_file, repository, {"probe": [1, 2]}, {"probe": {"stable": 2}})
        wait_until(lambda: stubs.label_version("probe", "stable") == 2, "stable on 2")


def test_a_new_label_may_point_at_an_unavailable_version_with_the_flag(
    tmp_path, repository, stubs_for
):
    """server_core.cc UpdateModelVersionLabelMap: with the flag a NEW label may name a
    version that is not available (even one that does not exist); requests through it get
    NOT_FOUND until the version is AVAILABLE."""
    with serve(tmp_path, repository, {"probe": [1]}, {"probe": {"stable": 1}}) as server:
        stubs = stubs_for(server)
        write_config(
            server.config_file,
            repository,
            {"probe": [1]},
            {"probe": {"stable": 1, "canary": 7}},
        )
        wait_until(
            lambda: (
                stubs.label_version("probe", "canary")
                == "NOT_FOUND: Servable not found for request: Specific(probe, 7)"
            ),
            "canary known and pointing at 7",
            seen=lambda: stubs.label_version("probe", "canary"),
        )
        error = rpc_error(
            lambda: stubs.predict(spec("probe", label="canary", signature="batch"), BATCH)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == "Servable not found for request: Specific(probe, 7)"


def test_a_label_on_a_missing_version_is_refused_without_the_flag(tmp_path, repository, stubs_for):
    """server_core.cc UpdateModelVersionLabelMap without the flag: every label must name an
    AVAILABLE version, so a label on version 7 (no such directory) is refused with
    FAILED_PRECONDITION, here through ModelService.HandleReloadConfigRequest
    (model_service_impl.cc answers the status inside the response)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        config = text_format.Parse(
            config_text(repository, {"probe": [1]}, {"probe": {"stable": 7}}),
            model_server_config_pb2.ModelServerConfig(),
        )
        # With the flag the label is new, so it is accepted; see the test above. A second
        # server without the flag refuses it:
        accepted = stubs.reload(config)
        assert accepted.status.error_code == 0, accepted
    with serve(tmp_path, repository, {"probe": [1]}, allow_unavailable_labels=False) as server:
        stubs = stubs_for(server)
        refused = stubs.reload(config)
        assert refused.status.error_code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert refused.status.error_message == (
            "Request to assign label to version 7 of model probe, which is not currently "
            "available for inference"
        )
        assert stubs.label_version("probe", "stable") == (
            "INVALID_ARGUMENT: Unrecognized servable version label: stable"
        )


def test_get_model_status_lists_every_version_and_ignores_the_label(
    tmp_path, repository, probe_version, stubs_for
):
    """get_model_status_impl.cc: without a version, every version the state monitor knows,
    highest first; `version_label` is not looked at (the REST path /labels/L neither)."""
    import httpx

    add_version(repository, probe_version, 2)
    with serve(tmp_path, repository, {"probe": [1, 2]}, {"probe": {"stable": 1}}) as server:
        stubs = stubs_for(server)
        every = {2: ("AVAILABLE", ""), 1: ("AVAILABLE", "")}
        assert stubs.status(spec("probe")) == every
        assert list(stubs.status(spec("probe", label="stable"))) == [2, 1]
        assert stubs.status(spec("probe", version=1)) == {1: ("AVAILABLE", "")}
        error = rpc_error(lambda: stubs.status(spec("probe", version=9)))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == "Could not find version 9 of model probe"
        error = rpc_error(lambda: stubs.status(spec("nope")))
        assert error.details() == "Could not find any versions of model nope"
        body = httpx.get(f"{server.rest_url}/v1/models/probe/labels/stable").json()
        assert [s["version"] for s in body["model_version_status"]] == ["2", "1"]


def test_version_states_warm_up_before_available_then_unload_to_end(
    tmp_path, repository, probe_version, stubs_for
):
    """core/loader_harness.h and servable_state_monitor.cc: START -> LOADING -> AVAILABLE,
    the warm-up records (saved_model_warmup_util.cc) replayed while LOADING, before any
    request can reach the version; an unlisted version goes UNLOADING -> END and its END
    state is still reported (availability_preserving_policy.cc: unloaded once another
    aspired version is AVAILABLE)."""
    gate = Gate(tmp_path / "warmup.gate")
    add_version(
        repository,
        probe_version,
        2,
        warmup=[("batch", {"ids": np.ones((1, 1), np.int32)}), ("wait", {"path": gate.input})],
    )
    with serve(tmp_path, repository, {"probe": [1]}, {"probe": {"stable": 1}}) as server:
        stubs = stubs_for(server)
        write_config(server.config_file, repository, {"probe": [1, 2]}, {"probe": {"stable": 1}})
        gate.wait_started(seen=lambda: stubs.status_or_error("probe"))
        # The warm-up record is held: version 2 is LOADING, not served.
        assert stubs.status(spec("probe")) == {2: ("LOADING", ""), 1: ("AVAILABLE", "")}
        error = rpc_error(lambda: stubs.predict(spec("probe", version=2, signature="batch"), BATCH))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        response = stubs.predict_raw(spec("probe", signature="batch"), BATCH)
        assert response.model_spec.version.value == 1  # Latest = highest AVAILABLE
        gate.release()
        wait_until(
            lambda: stubs.status_or_error("probe") == {2: ("AVAILABLE", ""), 1: ("AVAILABLE", "")},
            "version 2 AVAILABLE after its warm-up",
            seen=lambda: stubs.status_or_error("probe"),
        )
        write_config(server.config_file, repository, {"probe": [2]}, {"probe": {"stable": 2}})
        wait_until(
            lambda: stubs.status_or_error("probe") == {2: ("AVAILABLE", ""), 1: ("END", "")},
            "version 1 END once unlisted",
            seen=lambda: stubs.status_or_error("probe"),
        )
        assert "Finished reading warmup data" in server.log_text()


def test_a_failing_warmup_record_fails_the_load(tmp_path, repository, probe_version, stubs_for):
    """saved_model_warmup_util.cc: a warm-up request that fails fails the whole load; the
    version ends in END with the error and never takes traffic."""
    add_version(
        repository,
        probe_version,
        2,
        warmup=[("no_such_signature", {"ids": np.ones((1, 1), np.int32)})],
    )
    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        write_config(server.config_file, repository, {"probe": [1, 2]})
        wait_until(
            lambda: (
                isinstance(stubs.status_or_error("probe"), dict)
                and stubs.status(spec("probe")).get(2, ("",))[0] == "END"
            ),
            "version 2 failed",
            seen=lambda: stubs.status_or_error("probe"),
        )
        _, message = stubs.status(spec("probe"))[2]
        assert 'Serving signature key "no_such_signature" not found.' in message
        response = stubs.predict_raw(spec("probe", signature="batch"), BATCH)
        assert response.model_spec.version.value == 1


def test_two_models_and_concurrent_reads_during_a_reload(
    tmp_path, repository, probe_version, stubs_for
):
    """server_core.cc AddModelsViaModelConfigList: a model added by a reload is served after
    the poll while requests to the existing model keep succeeding throughout."""
    add_version(repository, probe_version, 1, name="other")
    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        failures: list[str] = []
        done = threading.Event()

        def hammer() -> None:
            while not done.is_set():
                try:
                    stubs.predict(spec("probe", signature="batch"), BATCH)
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code().name}: {exc.details()}")

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            write_config(server.config_file, repository, {"probe": [1], "other": None})
            wait_until(
                lambda: stubs.status_or_error("other") == {1: ("AVAILABLE", "")},
                "model `other` served",
                seen=lambda: stubs.status_or_error("other"),
            )
        finally:
            done.set()
            thread.join()
        assert failures == []
        assert stubs.predict(spec("other", signature="batch"), BATCH)["sums"].tolist() == [2]


def test_duplicate_model_names_are_refused(tmp_path, repository, stubs_for):
    """server_core.cc ValidateModelConfigList: a model listed twice is INVALID_ARGUMENT."""
    with serve(tmp_path, repository, {"probe": [1]}) as server:
        stubs = stubs_for(server)
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        config = text_format.Parse(
            config_text(repository, {"probe": [1]}), model_server_config_pb2.ModelServerConfig()
        )
        config.model_config_list.config.add().CopyFrom(config.model_config_list.config[0])
        answer = stubs.reload(config)
        assert answer.status.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert (
            answer.status.error_message
            == "Illegal to list model probe multiple times in config list"
        )
        assert stubs.status(spec("probe")) == {1: ("AVAILABLE", "")}


def test_relative_base_path_is_refused(tmp_path: Path, repository, stubs_for):
    """server_core.cc ValidateModelConfigList: base paths must be absolute."""
    config = tmp_path / "relative.config"
    config.write_text(
        'model_config_list { config { name: "probe" base_path: "models/probe" '
        'model_platform: "tensorflow" } }\n',
        encoding="utf-8",
    )
    code, log = ModelServerProcess(config).run_to_exit()
    assert code != 0
    assert (
        "Expected model probe to have an absolute path or URI; got base_path()=models/probe" in log
    )
