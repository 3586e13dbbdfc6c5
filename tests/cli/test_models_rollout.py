"""`talkative models`: safe edits of models.config (list, wait, then move the label).

Three layers:
- the planning rules on config protos (no server, no file);
- the steps against `FakeServing`, a few lines that re-read the config file the way
  ServerCore::ReloadConfig does (label map first, stalling on a refused label), with a fake
  clock so that no test sleeps;
- the command as a user runs it, and the same steps against a real model server
  (tests/support/model_server.py), at the end of this file.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from talkative import rollout
from talkative.cli import main
from talkative.rollout import (
    ConfigError,
    GrpcModelServer,
    Refused,
    Rollout,
    VersionStatus,
    WaitFailed,
    parse_config,
    plan_label_move,
    plan_list,
    plan_unlist,
    read_config,
    render_config,
    rollback_target,
)
from tests.support.cli import run_talkative

HEADER = """\
# The models TF Serving serves.
#
# Reviewed like code.

"""

BODY = """\
model_config_list {
  config {
    name: "tiny_en"
    base_path: "/models/tiny_en"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 1 }
  }
  config {
    name: "other"
    base_path: "/models/other"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 1 } }
  }
}
"""


def config(text: str = BODY) -> model_server_config_pb2.ModelServerConfig:
    parsed = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(text, parsed)
    return parsed


def tiny(cfg: model_server_config_pb2.ModelServerConfig) -> tuple[list[int], dict[str, int]]:
    model = rollout.find_model(cfg, "tiny_en")
    return sorted(model.model_version_policy.specific.versions), dict(model.version_labels)


def with_versions(versions: list[int], labels: dict[str, int]):
    cfg = config()
    model = rollout.find_model(cfg, "tiny_en")
    model.model_version_policy.specific.versions[:] = versions
    model.version_labels.clear()
    model.version_labels.update(labels)
    return cfg


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """NAME/VERSION/saved_model.pb for versions 1 to 3 (empty files: nothing loads them here)."""
    repo = tmp_path / "models"
    for v in (1, 2, 3):
        (repo / "tiny_en" / str(v)).mkdir(parents=True)
        (repo / "tiny_en" / str(v) / "saved_model.pb").write_bytes(b"")
    return repo


# ---------------------------------------------------------------------------- the file


def test_an_unparsable_file_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(HEADER + BODY.replace('name: "other"', 'nmae: "other"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    assert str(caught.value).startswith(f"{path}:15:5: ")
    assert "nmae" in str(caught.value)
    assert caught.value.exit_code == 2


def test_rewriting_keeps_the_leading_comments_and_the_order_of_models(tmp_path: Path) -> None:
    cf = parse_config(HEADER + BODY, "models.config")
    assert cf.header == HEADER and cf.dropped_comments == 0
    text = render_config(cf.header, cf.config)
    assert text.startswith(HEADER)
    names = [m.name for m in config(text.removeprefix(HEADER)).model_config_list.config]
    assert names == ["tiny_en", "other"]
    assert parse_config(text, "again").config == cf.config


def test_comments_inside_the_body_are_counted_as_dropped() -> None:
    cf = parse_config(HEADER + BODY.replace("  config {\n", "  # why\n  config {\n", 1), "x")
    assert cf.dropped_comments == 1


def test_written_atomically_with_the_mode_kept(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    rollout.write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["models.config"]  # no temp file left


# ---------------------------------------------------------------------------- planning


def test_listing_adds_the_version_and_nothing_else(repository: Path) -> None:
    new = plan_list(config(), "tiny_en", 2, repository)
    assert new is not None
    assert tiny(new) == ([1, 2], {"stable": 1, "canary": 1})
    assert tiny(config()) == ([1], {"stable": 1, "canary": 1})  # the input is not changed
    assert plan_list(new, "tiny_en", 2, repository) is None  # already listed


def test_listing_a_version_not_in_the_repository_is_refused(repository: Path) -> None:
    with pytest.raises(Refused, match=r"tiny_en/4/saved_model.pb does not exist"):
        plan_list(config(), "tiny_en", 4, repository)


def test_an_unknown_model_is_refused_with_the_known_ones(repository: Path) -> None:
    with pytest.raises(Refused, match=r"no model named 'tiny_fr'.*tiny_en, other"):
        plan_list(config(), "tiny_fr", 2, repository)


def test_only_a_specific_version_policy_can_be_edited(repository: Path) -> None:
    (repository / "other" / "2").mkdir(parents=True)
    (repository / "other" / "2" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(Refused, match=r"'latest'.*only `model_version_policy \{ specific"):
        plan_list(config(), "other", 2, repository)


def test_a_label_moves_onto_a_listed_available_version() -> None:
    new = plan_label_move(with_versions([1, 2], {"stable": 1, "canary": 1}), "tiny_en", "canary",
                          2, available=[1, 2])  # fmt: skip
    assert new is not None
    assert tiny(new) == ([1, 2], {"stable": 1, "canary": 2})


def test_a_label_already_there_is_no_edit() -> None:
    assert plan_label_move(config(), "tiny_en", "stable", 1, available=[1]) is None


def test_moving_a_label_onto_an_unlisted_version_is_refused() -> None:
    # The edit the old README asked for: TF Serving would refuse it on every poll.
    with pytest.raises(Refused, match=r"version 2 of 'tiny_en' is not listed.*stalls"):
        plan_label_move(config(), "tiny_en", "canary", 2, available=[1])


def test_moving_a_label_onto_a_version_not_available_is_refused() -> None:
    cfg = with_versions([1, 2], {"stable": 1, "canary": 1})
    with pytest.raises(Refused, match=r"not AVAILABLE on the server \(available: 1\)"):
        plan_label_move(cfg, "tiny_en", "canary", 2, available=[1])


def test_rollback_goes_to_the_largest_listed_version_below() -> None:
    cfg = with_versions([1, 2, 3], {"stable": 3, "canary": 3})
    assert rollback_target(cfg, "tiny_en", "stable", None) == 2
    assert rollback_target(cfg, "tiny_en", "stable", 1) == 1


def test_rollback_refuses_when_there_is_nothing_to_go_back_to() -> None:
    with pytest.raises(Refused, match=r"no version of 'tiny_en' below 1 is listed.*--to"):
        rollback_target(config(), "tiny_en", "stable", None)
    with pytest.raises(Refused, match=r"already on version 1"):
        rollback_target(config(), "tiny_en", "stable", 1)
    with pytest.raises(Refused, match=r"no label 'beta'"):
        rollback_target(config(), "tiny_en", "beta", None)


def test_retire_unlists_a_version_without_labels() -> None:
    new = plan_unlist(with_versions([1, 2], {"stable": 2, "canary": 2}), "tiny_en", 1)
    assert tiny(new) == ([2], {"stable": 2, "canary": 2})


@pytest.mark.parametrize(
    ("versions", "labels", "version", "why"),
    [
        ([1, 2], {"stable": 1, "canary": 2}, 2, r"labelled canary: move the label"),
        ([1, 2], {"stable": 2, "canary": 2}, 2, r"labelled canary, stable"),
        ([2], {}, 2, r"the only version"),
        ([1, 2], {"stable": 2}, 3, r"not listed: nothing to retire"),
    ],
)
def test_retire_refusals(versions, labels, version, why) -> None:
    with pytest.raises(Refused, match=why):
        plan_unlist(with_versions(versions, labels), "tiny_en", version)


# ---------------------------------------------------------------------------- steps, fake server


class FakeServing:
    """TF Serving's config reload in miniature, one reload each time it is asked anything.

    As in ServerCore::ReloadConfig: the label map is checked first and a refused label stops
    the reload (`stalled`); then listed versions load (one state per reload; those in
    `broken` end in an error) and unlisted ones unload. With `polling` False it never
    re-reads the file, like a server whose poll interval is longer than the wait.
    """

    def __init__(self, path: Path, *, broken: Collection[int] = (), polling: bool = True):
        self.target = "fake:8500"
        self.path, self.broken, self.polling = path, set(broken), polling
        self.states: dict[int, VersionStatus] = {}
        self.labels: dict[str, int] = {}
        self.stalled: list[str] = []
        for _ in range(3):  # START, LOADING, AVAILABLE: serving when the test begins
            self._reload()

    def _reload(self) -> None:
        model = rollout.find_model(read_config(self.path).config, "tiny_en")
        labels = dict(model.version_labels)
        for label, version in labels.items():
            state = self.states.get(version)
            new_label = label not in self.labels or self.labels[label] == version
            if not new_label and (state is None or state.state != "AVAILABLE"):
                self.stalled.append(f"label {label} -> {version}")
                return
        self.labels = labels
        listed = set(model.model_version_policy.specific.versions)
        for v in listed:
            state = self.states.get(v)
            if state is None or state.state in ("END", "UNLOADING"):
                self.states[v] = VersionStatus(v, "START")
            elif state.state == "START":
                self.states[v] = VersionStatus(v, "LOADING")
            elif state.state == "LOADING":
                self.states[v] = (
                    VersionStatus(v, "END", 3, "could not load the SavedModel")
                    if v in self.broken
                    else VersionStatus(v, "AVAILABLE")
                )
        for v, state in list(self.states.items()):
            if v not in listed and state.state != "END":
                self.states[v] = VersionStatus(v, "END")

    def version_status(self, name: str) -> dict[int, VersionStatus]:
        if self.polling:
            self._reload()
        return dict(self.states)

    def label_version(self, name: str, label: str) -> int | None:
        if self.polling:
            self._reload()
        version = self.labels.get(label)
        ok = version is not None and self.states[version].state == "AVAILABLE"
        return version if ok else None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.config"
    path.write_text(HEADER + BODY, encoding="utf-8")
    return path


def steps(config_file: Path, repository: Path, server: FakeServing | None, lines: list[str],
          dry_run: bool = False) -> Rollout:  # fmt: skip
    clock = FakeClock()
    return Rollout(config_file, repository, server, timeout_s=30, poll_s=0.5, dry_run=dry_run,
                   out=lines.append, clock=clock, sleep=clock.sleep)  # fmt: skip


def on_file(config_file: Path) -> tuple[list[int], dict[str, int]]:
    return tiny(read_config(config_file).config)


def test_promote_to_canary_then_stable(config_file: Path, repository: Path) -> None:
    server = FakeServing(config_file)
    lines: list[str] = []
    steps(config_file, repository, server, lines).promote("tiny_en", 2, "canary")
    assert on_file(config_file) == ([1, 2], {"stable": 1, "canary": 2})
    assert server.labels == {"stable": 1, "canary": 2} and not server.stalled
    assert (
        lines[0].startswith("1. listed version 2 of tiny_en") and "(versions 1 -> 1, 2)" in lines[0]
    )
    assert any("version 2 LOADING" in line for line in lines)
    assert any(line.startswith("2. moved canary of tiny_en: 1 -> 2") for line in lines)
    assert lines[-1] == "   the server now answers canary of tiny_en with version 2"

    lines.clear()
    steps(config_file, repository, server, lines).promote("tiny_en", 2, "stable")
    assert on_file(config_file) == ([1, 2], {"stable": 2, "canary": 2})
    assert server.labels == {"stable": 2, "canary": 2} and not server.stalled
    assert "listed already" in lines[0]
    assert read_config(config_file).header == HEADER


def test_the_single_edit_the_old_readme_asked_for_stalls_the_fake(config_file: Path) -> None:
    # What the steps avoid, reproduced: list 2 and move canary onto it in one edit.
    server = FakeServing(config_file)
    config_file.write_text(
        HEADER
        + BODY.replace("specific { versions: 1 }", "specific { versions: 1 versions: 2 }").replace(
            'key: "canary" value: 1', 'key: "canary" value: 2'
        ),
        encoding="utf-8",
    )
    for _ in range(5):
        server.version_status("tiny_en")
    assert 2 not in server.states and server.stalled == ["label canary -> 2"] * 5


def test_a_version_that_fails_to_load_is_unlisted_again(
    config_file: Path, repository: Path
) -> None:
    server = FakeServing(config_file, broken={2})
    lines: list[str] = []
    with pytest.raises(WaitFailed) as caught:
        steps(config_file, repository, server, lines).promote("tiny_en", 2, "stable")
    assert "failed to load: END (error 3: could not load the SavedModel)" in str(caught.value)
    assert "unlisted again and stable stays on 1" in str(caught.value)
    assert on_file(config_file) == ([1], {"stable": 1, "canary": 1})
    assert any(line.startswith("2. unlisted version 2 of tiny_en again") for line in lines)
    assert not server.stalled


def test_a_server_that_does_not_load_it_in_time(config_file: Path, repository: Path) -> None:
    server = FakeServing(config_file, polling=False)
    lines: list[str] = []
    with pytest.raises(WaitFailed) as caught:
        steps(config_file, repository, server, lines).promote("tiny_en", 2, "canary")
    assert "gave up after 30 s; last seen: version 1 AVAILABLE (version 2 not reported yet)" in str(
        caught.value
    )
    assert on_file(config_file) == ([1], {"stable": 1, "canary": 1})


def test_promote_refuses_a_listed_version_that_failed(config_file: Path, repository: Path) -> None:
    server = FakeServing(config_file, broken={2})
    config_file.write_text(
        HEADER + BODY.replace("specific { versions: 1 }", "specific { versions: 1 versions: 2 }")
    )
    for _ in range(3):
        server.version_status("tiny_en")
    before = config_file.read_text(encoding="utf-8")
    with pytest.raises(Refused, match=r"failed to load.*canary of tiny_en is not moved"):
        steps(config_file, repository, server, []).promote("tiny_en", 2, "canary")
    assert config_file.read_text(encoding="utf-8") == before


def test_rollback_to_a_listed_version_moves_only_the_label(
    config_file: Path, repository: Path
) -> None:
    server = FakeServing(config_file)
    lines: list[str] = []
    steps(config_file, repository, server, lines).promote("tiny_en", 2, "stable")
    steps(config_file, repository, server, lines).rollback("tiny_en", "stable")
    assert on_file(config_file) == ([1, 2], {"stable": 1, "canary": 1})
    assert server.labels["stable"] == 1 and not server.stalled


def test_rollback_to_a_retired_version_lists_it_first(config_file: Path, repository: Path) -> None:
    server = FakeServing(config_file)
    lines: list[str] = []
    run = steps(config_file, repository, server, lines)
    run.promote("tiny_en", 2, "canary")
    run.promote("tiny_en", 2, "stable")
    run.retire("tiny_en", 1)
    assert on_file(config_file) == ([2], {"stable": 2, "canary": 2})
    assert server.states[1].state == "END"
    lines.clear()
    # Version 1 is still reported END from its retirement: that is not this load's outcome.
    steps(config_file, repository, server, lines).rollback("tiny_en", "stable", to=1)
    assert on_file(config_file) == ([1, 2], {"stable": 1, "canary": 2})
    assert server.labels == {"stable": 1, "canary": 2} and not server.stalled
    assert lines[0] == "rolling stable of tiny_en back: 2 -> 1"


def test_retire_waits_until_the_version_is_unloaded(config_file: Path, repository: Path) -> None:
    server = FakeServing(config_file)
    lines: list[str] = []
    run = steps(config_file, repository, server, lines)
    run.promote("tiny_en", 2, "canary")
    with pytest.raises(Refused, match="labelled canary"):
        run.retire("tiny_en", 2)
    run.promote("tiny_en", 2, "stable")
    lines.clear()
    run.retire("tiny_en", 1)
    assert lines[0] == f"1. unlisted version 1 of tiny_en in {config_file} (versions 1, 2 -> 2)"
    assert lines[-1].endswith("version 1 of tiny_en is unloaded; its directory can be archived")


def test_a_dry_run_writes_nothing_and_needs_no_server(config_file: Path, repository: Path) -> None:
    before = config_file.read_text(encoding="utf-8")
    lines: list[str] = []
    steps(config_file, repository, None, lines, dry_run=True).promote("tiny_en", 2, "canary")
    assert config_file.read_text(encoding="utf-8") == before
    assert [line[:3] for line in lines[1:]] == ["1. ", "2. ", "3. "]
    assert "list version 2 of tiny_en (versions 1 -> 1, 2)" in lines[1]
    assert "move canary of tiny_en: 1 -> 2" in lines[3]


def test_status_shows_versions_and_labels_as_file_and_server_see_them(
    config_file: Path, repository: Path
) -> None:
    server = FakeServing(config_file)
    lines: list[str] = []
    steps(config_file, repository, server, []).promote("tiny_en", 2, "canary")
    server.polling = False  # the next edit is not applied yet
    cfg = read_config(config_file)
    rollout.save_config(cfg, rollout._set_label(cfg.config, "tiny_en", "stable", 2))
    steps(config_file, repository, server, lines).status("tiny_en")
    assert lines == [
        f"tiny_en: config {config_file}, server fake:8500",
        "  version 1: listed, server AVAILABLE",
        "  version 2: listed, server AVAILABLE, labels canary, stable",
        "  label canary: config 2, server 2",
        "  label stable: config 2, server 1 (not applied yet: the server re-reads the config "
        "on its next poll; if this stays, check its log for a refused config)",
    ]


# ---------------------------------------------------------------------------- the command


def talkative(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_talkative("models", *args, cwd=cwd, timeout=300)


@pytest.mark.parametrize("action", ["promote", "rollback", "retire", "status"])
def test_help_documents_every_option(action: str) -> None:
    out = talkative(action, "--help")
    assert out.returncode == 0, out.stderr
    options = ["NAME", "--config", "--server"]
    if action != "status":
        options += ["--repository", "--timeout", "--poll", "--dry-run"]
    if action in ("promote", "rollback"):
        options += ["--label"]
    if action == "rollback":
        options += ["--to"]
    for option in options:
        assert option in out.stdout, option


def test_an_unparsable_file_exits_2_with_one_line(tmp_path: Path, repository: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text("model_config_list {\n  config { name: 3 \n", encoding="utf-8")
    out = talkative("promote", "tiny_en", "2", "--label", "canary", "--config", str(path),
                    "--repository", str(repository), "--dry-run")  # fmt: skip
    assert out.returncode == 2 and not out.stdout
    assert out.stderr.startswith(f"error: {path}:2:")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_the_command_prints_a_dry_run(config_file: Path, repository: Path) -> None:
    out = talkative("rollback", "tiny_en", "--to", "2", "--config", str(config_file),
                    "--repository", str(repository), "--dry-run")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "rolling stable of tiny_en back: 1 -> 2"
    assert "3. move stable of tiny_en: 1 -> 2" in out.stdout


def test_an_unreachable_server_is_one_line_and_nothing_is_written(
    config_file: Path, repository: Path
) -> None:
    before = config_file.read_text(encoding="utf-8")
    out = talkative("promote", "tiny_en", "2", "--label", "canary", "--config", str(config_file),
                    "--repository", str(repository), "--server", "127.0.0.1:1")  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot reach the model server at 127.0.0.1:1")
    assert out.stderr.count("\n") == 1
    assert config_file.read_text(encoding="utf-8") == before


# ---------------------------------------------------------------------------- a real model server
# `talkative model-server` (TF Serving's flags, config reload and gRPC API) in a child
# process, on a copy of the tiny exported char-LSTM: version 2 is a copy of version 1,
# version 3 a SavedModel that cannot load.


@pytest.fixture
def served(tiny_repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from tests.support.model_server import ModelServerProcess, write_config

    repo = tmp_path / "served-models"
    for v in (1, 2):
        shutil.copytree(tiny_repository / "tiny_en" / "1", repo / "tiny_en" / str(v))
    (repo / "tiny_en" / "3").mkdir()
    (repo / "tiny_en" / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    path = write_config(
        tmp_path / "models.config", repo, {"tiny_en": [1]}, {"tiny_en": {"stable": 1, "canary": 1}}
    )
    with ModelServerProcess(path, poll_s=0.2) as server:
        served = Served(path, repo, server, capsys)
        yield served
    print("\n".join(served.transcript))  # shown with the test's report when it fails


@dataclass
class Served:
    config: Path
    repository: Path
    server: Any  # tests.support.model_server.ModelServerProcess
    capsys: pytest.CaptureFixture[str]
    transcript: list[str] = field(default_factory=list)

    def models(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The command, in this process (TensorFlow is imported once, not per call)."""
        options = ["--config", str(self.config), "--server", self.server.grpc_target]
        if args[0] != "status":
            options += ["--repository", str(self.repository), "--poll", "0.1", "--timeout", "120"]
        code = main(["models", *args, *options])
        out, err = self.capsys.readouterr()
        self.transcript += [f"$ talkative models {' '.join(args)}  -> {code}", out, err]
        return subprocess.CompletedProcess(args, code, out, err)

    def label(self, label: str) -> int | None:
        client = GrpcModelServer(self.server.grpc_target)
        try:
            return client.label_version("tiny_en", label)
        finally:
            client.close()

    def states(self) -> dict[int, str]:
        client = GrpcModelServer(self.server.grpc_target)
        try:
            return {v: s.state for v, s in client.version_status("tiny_en").items()}
        finally:
            client.close()


@pytest.mark.slow
def test_real_promote_canary_then_stable_then_roll_back(served: Served) -> None:
    out = served.models("promote", "tiny_en", "2", "--label", "canary")
    assert out.returncode == 0, served.server.log_text()
    assert "1. listed version 2 of tiny_en" in out.stdout
    assert "the server now answers canary of tiny_en with version 2" in out.stdout
    assert on_file(served.config) == ([1, 2], {"stable": 1, "canary": 2})
    assert (served.label("canary"), served.label("stable")) == (2, 1)

    out = served.models("promote", "tiny_en", "2", "--label", "stable")
    assert out.returncode == 0, served.server.log_text()
    assert (served.label("canary"), served.label("stable")) == (2, 2)

    out = served.models("rollback", "tiny_en", "--label", "stable")
    assert out.returncode == 0, served.server.log_text()
    assert out.stdout.startswith("rolling stable of tiny_en back: 2 -> 1")
    assert (served.label("canary"), served.label("stable")) == (2, 1)
    assert served.states() == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert "not currently available" not in served.server.log_text()


@pytest.mark.slow
def test_real_retire_then_roll_back_to_the_retired_version(served: Served) -> None:
    for label in ("canary", "stable"):
        assert served.models("promote", "tiny_en", "2", "--label", label).returncode == 0
    refused = served.models("retire", "tiny_en", "2")
    assert refused.returncode == 2 and "labelled canary, stable" in refused.stderr

    out = served.models("retire", "tiny_en", "1")
    assert out.returncode == 0, served.server.log_text()
    assert served.states()[1] == "END"
    assert on_file(served.config) == ([2], {"stable": 2, "canary": 2})

    out = served.models("rollback", "tiny_en", "--label", "stable", "--to", "1")
    assert out.returncode == 0, served.server.log_text()
    assert "1. listed version 1 of tiny_en" in out.stdout
    assert (served.label("canary"), served.label("stable")) == (2, 1)
    assert "not currently available" not in served.server.log_text()


@pytest.mark.slow
def test_real_a_version_that_fails_to_load_is_unlisted_again(served: Served) -> None:
    out = served.models("promote", "tiny_en", "3", "--label", "canary")
    assert out.returncode == 1
    assert "version 3 of tiny_en failed to load: END" in out.stderr
    assert on_file(served.config) == ([1], {"stable": 1, "canary": 1})
    assert (served.label("canary"), served.label("stable")) == (1, 1)
    # The server took up the restored file: a later promote of a good version still works.
    assert served.models("promote", "tiny_en", "2", "--label", "canary").returncode == 0


@pytest.mark.slow
def test_real_a_label_move_onto_a_failed_version_is_refused(served: Served) -> None:
    from tests.support.model_server import wait_until, write_config

    write_config(served.config, served.repository, {"tiny_en": [1, 3]},
                 {"tiny_en": {"stable": 1, "canary": 1}})  # fmt: skip
    wait_until(lambda: served.states().get(3) == "END", "version 3 to fail", seen=served.states)
    before = served.config.read_text(encoding="utf-8")
    out = served.models("promote", "tiny_en", "3", "--label", "stable")
    assert out.returncode == 2 and "stable of tiny_en is not moved" in out.stderr
    assert served.config.read_text(encoding="utf-8") == before


@pytest.mark.slow
def test_real_the_one_edit_stall_shows_in_status_and_is_undone(served: Served) -> None:
    from tests.support.model_server import wait_until, write_config

    # The edit the old README asked for: list 2 and move canary onto it at once.
    write_config(served.config, served.repository, {"tiny_en": [1, 2]},
                 {"tiny_en": {"stable": 1, "canary": 2}})  # fmt: skip
    wait_until(lambda: "not currently available for inference" in served.server.log_text(),
               "the server to refuse the config", seen=served.server.log_text)  # fmt: skip
    assert 2 not in served.states() and served.label("canary") == 1

    out = served.models("status", "tiny_en")
    assert out.returncode == 0
    assert "  label canary: config 2, server 1 (not applied yet" in out.stdout
    assert "  version 2: listed, server does not report it" in out.stdout

    # Put canary back where the server has it: the stall ends, version 2 loads.
    out = served.models("rollback", "tiny_en", "--label", "canary", "--to", "1")
    assert out.returncode == 0, served.server.log_text()
    wait_until(lambda: served.states().get(2) == "AVAILABLE", "version 2 to load",
               seen=served.states)  # fmt: skip
    out = served.models("promote", "tiny_en", "2", "--label", "canary")
    assert out.returncode == 0, served.server.log_text()
    assert served.label("canary") == 2
