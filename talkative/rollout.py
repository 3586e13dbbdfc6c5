"""Safe edits of TF Serving's models.config: list a version, wait for it, then move a label.

TF Serving re-reads `--model_config_file` every poll interval. `ServerCore::ReloadConfig`
stores the new config first and then rebuilds the label map, which refuses a label on a
version that is not AVAILABLE (with `--allow_version_labels_for_unavailable_models`, only a
label that is new may). When that happens the new versions are never added, and every later
poll fails the same way: one edit that lists version 2 *and* moves a label in use onto it
stalls the server on the old versions. So every update here is done in steps, each its own
write of the file, each waited on through the server's gRPC API:

1. list the version in `model_version_policy { specific { ... } }`;
2. wait until GetModelStatus shows it AVAILABLE (or put the file back if it fails to load);
3. move the label, and wait until GetModelMetadata resolves the label to the version.

The planning functions (`plan_*`, `rollback_target`) are pure: config proto in, edited copy
out, `Refused` when the edit is unsafe. The steps (`promote`, `rollback`, `retire`) read and
write the file and wait on a `ModelServer` (`GrpcModelServer`, or a fake in tests).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from talkative_common.quiet_tensorflow import import_tensorflow

# The generated protobuf classes carry no type information.
ModelServerConfig = Any
ModelConfig = Any

LABELS = ("stable", "canary")
STATES = ("UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END")


class RolloutError(Exception):
    """An error the command reports in one line; `exit_code` is the process's status."""

    exit_code = 1


class ConfigError(RolloutError):
    """The config file cannot be read or parsed (the message starts with path:line:column)."""

    exit_code = 2


class Refused(RolloutError):
    """The edit is wrong or unsafe; nothing was written."""

    exit_code = 2


class ServerError(RolloutError):
    """The model server cannot be reached or answered with an unexpected error."""


class WaitFailed(RolloutError):
    """The server did not reach the expected state (any edit written was undone)."""


# ---------------------------------------------------------------------------- the file


@dataclass
class ConfigFile:
    """A parsed models.config: its leading comment block kept verbatim, and the proto."""

    path: Path
    header: str
    config: ModelServerConfig
    # Comments after the header are lost when the body is regenerated: say so.
    dropped_comments: int = 0


def parse_config(text: str, source: str) -> ConfigFile:
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and (not lines[n].strip() or lines[n].lstrip().startswith("#")):
        n += 1
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        # str(exc) is "line:column : reason"; keep only the reason after our own prefix.
        reason = str(exc).split(" : ", 1)[-1]
        raise ConfigError(f"{source}:{exc.GetLine()}:{exc.GetColumn()}: {reason}") from exc
    dropped = sum(1 for line in lines[n:] if line.lstrip().startswith("#"))
    return ConfigFile(Path(source), "".join(lines[:n]), config, dropped)


def read_config(path: Path) -> ConfigFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse_config(text, str(path))


def render_config(header: str, config: ModelServerConfig) -> str:
    if header and not header.endswith("\n"):
        header += "\n"
    return header + text_format.MessageToString(config)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step: TF Serving may read it at any moment, never half-written."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; the server's user must still read it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_config(cf: ConfigFile, config: ModelServerConfig) -> None:
    write_atomically(cf.path, render_config(cf.header, config))
    cf.config = config


# ---------------------------------------------------------------------------- planning


def find_model(config: ModelServerConfig, name: str) -> ModelConfig:
    names = [m.name for m in config.model_config_list.config]
    for model in config.model_config_list.config:
        if model.name == name:
            return model
    known = ", ".join(names) or "none"
    raise Refused(f"no model named {name!r} in the config (models: {known})")


def listed_versions(model: ModelConfig) -> list[int]:
    """The versions a `specific` policy lists; Refused for any other policy."""
    policy = model.model_version_policy.WhichOneof("policy_choice")
    if policy != "specific":
        which = policy or "latest (the default)"
        raise Refused(
            f"model {model.name!r} uses the version policy {which!r}: the server picks its "
            "versions from the directory, so listing one cannot be controlled from the config; "
            "only `model_version_policy { specific { versions: N } }` can be edited this way"
        )
    return sorted(int(v) for v in model.model_version_policy.specific.versions)


def labels_on(model: ModelConfig, version: int) -> list[str]:
    return sorted(label for label, v in model.version_labels.items() if v == version)


def version_dir(repository: Path, name: str, version: int) -> Path:
    return repository / name / str(version)


def check_version_exported(repository: Path, name: str, version: int) -> None:
    saved_model = version_dir(repository, name, version) / "saved_model.pb"
    if not saved_model.is_file():
        raise Refused(
            f"{saved_model} does not exist: the server would never load version {version} of "
            f"{name!r} (copy the version directory into the repository first)"
        )


def _copy(config: ModelServerConfig) -> ModelServerConfig:
    new = model_server_config_pb2.ModelServerConfig()
    new.CopyFrom(config)
    return new


def plan_list(
    config: ModelServerConfig, name: str, version: int, repository: Path
) -> ModelServerConfig | None:
    """Step 1: the config with `version` added to the listed versions; None if already listed."""
    if version < 0:
        raise Refused(f"version {version} is not a version number")
    model = find_model(config, name)
    if version in listed_versions(model):
        return None
    check_version_exported(repository, name, version)
    new = _copy(config)
    versions = find_model(new, name).model_version_policy.specific.versions
    versions[:] = sorted([*versions, version])
    return new


def plan_unlist(config: ModelServerConfig, name: str, version: int) -> ModelServerConfig:
    """Retire: the config without `version`; Refused while a label points at it or it is alone."""
    model = find_model(config, name)
    versions = listed_versions(model)
    if version not in versions:
        raise Refused(f"version {version} of {name!r} is not listed: nothing to retire")
    labels = labels_on(model, version)
    if labels:
        raise Refused(
            f"version {version} of {name!r} is labelled {', '.join(labels)}: move the "
            "label(s) to another version first (`talkative models promote`)"
        )
    if versions == [version]:
        raise Refused(f"version {version} is the only version of {name!r} listed")
    return _drop_version(config, name, version)


def _drop_version(config: ModelServerConfig, name: str, version: int) -> ModelServerConfig:
    new = _copy(config)
    versions = find_model(new, name).model_version_policy.specific.versions
    versions[:] = [v for v in versions if v != version]
    return new


def plan_label_move(
    config: ModelServerConfig,
    name: str,
    label: str,
    version: int,
    available: Collection[int],
) -> ModelServerConfig | None:
    """Step 3: the config with `label` on `version`; None if it is there already.

    `available` are the versions the server reports AVAILABLE right now. A label in use moved
    onto any other version makes TF Serving refuse the whole config, on this reload and every
    later one: that edit is refused here instead.
    """
    model = find_model(config, name)
    versions = listed_versions(model)
    if model.version_labels.get(label) == version:
        return None
    if version not in versions:
        raise Refused(
            f"version {version} of {name!r} is not listed: list it and wait until it is "
            f"AVAILABLE before moving {label!r} onto it (one edit doing both stalls the server)"
        )
    if version not in available:
        shown = ", ".join(str(v) for v in sorted(available)) or "none"
        raise Refused(
            f"version {version} of {name!r} is not AVAILABLE on the server (available: "
            f"{shown}): moving {label!r} onto it would make the server refuse this config and "
            "every later one"
        )
    new = _copy(config)
    find_model(new, name).version_labels[label] = version
    return new


def _set_label(
    config: ModelServerConfig, name: str, label: str, version: int | None
) -> ModelServerConfig:
    new = _copy(config)
    labels = find_model(new, name).version_labels
    if version is None:
        labels.pop(label, None)
    else:
        labels[label] = version
    return new


def rollback_target(config: ModelServerConfig, name: str, label: str, to: int | None) -> int:
    """The version `label` goes back to: `to`, or the largest listed one below its current."""
    model = find_model(config, name)
    versions = listed_versions(model)
    if label not in model.version_labels:
        raise Refused(f"model {name!r} has no label {label!r}: nothing to roll back")
    current = int(model.version_labels[label])
    if to is not None:
        if to == current:
            raise Refused(f"{label!r} of {name!r} is already on version {to}")
        return to
    below = [v for v in versions if v < current]
    if not below:
        raise Refused(
            f"no version of {name!r} below {current} is listed: nothing to roll {label!r} back "
            "to (name one with --to VERSION)"
        )
    return below[-1]


# ---------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class VersionStatus:
    """One version as GetModelStatus reports it."""

    version: int
    state: str  # one of STATES
    error_code: int = 0
    error_message: str = ""

    def describe(self) -> str:
        if self.error_code:
            return f"{self.state} (error {self.error_code}: {self.error_message})"
        return self.state


class ModelServer(Protocol):
    """What the steps need from a model server."""

    target: str

    def version_status(self, name: str) -> dict[int, VersionStatus]:
        """Every version the server knows of `name` ({} if none); ServerError if unreachable."""
        ...

    def label_version(self, name: str, label: str) -> int | None:
        """The version the server resolves `label` to, None if it does not resolve it."""
        ...


class GrpcModelServer:
    """TF Serving's gRPC API: ModelService.GetModelStatus and PredictionService.GetModelMetadata."""

    def __init__(self, target: str, rpc_timeout_s: float = 5.0) -> None:
        # Imported here: these modules load TensorFlow (seconds), which planning never needs;
        # its start-up log lines would bury this command's own output, hence quietly.
        import_tensorflow()
        import grpc
        from tensorflow_serving.apis import (
            model_service_pb2_grpc,
            prediction_service_pb2_grpc,
        )

        self.target = target
        self._grpc = grpc
        self._timeout = rpc_timeout_s
        self._channel = grpc.insecure_channel(target)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _failure(self, exc: Any, what: str) -> ServerError:
        code = exc.code()
        if code in (self._grpc.StatusCode.UNAVAILABLE, self._grpc.StatusCode.DEADLINE_EXCEEDED):
            return ServerError(f"cannot reach the model server at {self.target}: {exc.details()}")
        return ServerError(f"{what} at {self.target}: {code.name}: {exc.details()}")

    def version_status(self, name: str) -> dict[int, VersionStatus]:
        from tensorflow_serving.apis import get_model_status_pb2, model_pb2

        request = get_model_status_pb2.GetModelStatusRequest(
            model_spec=model_pb2.ModelSpec(name=name)
        )
        try:
            response = self._models.GetModelStatus(request, timeout=self._timeout)
        except self._grpc.RpcError as exc:
            if exc.code() == self._grpc.StatusCode.NOT_FOUND:
                return {}  # no version of this model is known (yet)
            raise self._failure(exc, "GetModelStatus") from exc
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return {
            int(s.version): VersionStatus(
                int(s.version),
                state_name(s.state),
                int(s.status.error_code),
                s.status.error_message,
            )
            for s in response.model_version_status
        }

    def label_version(self, name: str, label: str) -> int | None:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = name
        request.model_spec.version_label = label
        request.metadata_field.append("signature_def")
        try:
            response = self._predictions.GetModelMetadata(request, timeout=self._timeout)
        except self._grpc.RpcError as exc:
            # An unknown label, or one on a version not loaded, is an answer, not a failure.
            if exc.code() in (
                self._grpc.StatusCode.NOT_FOUND,
                self._grpc.StatusCode.INVALID_ARGUMENT,
                self._grpc.StatusCode.FAILED_PRECONDITION,
            ):
                return None
            raise self._failure(exc, "GetModelMetadata") from exc
        return int(response.model_spec.version.value)


# ---------------------------------------------------------------------------- the steps


@dataclass
class Rollout:
    """Where and how the steps run; `out` receives every line a person needs to read."""

    config_path: Path
    repository: Path
    server: ModelServer | None  # None only for a dry run: the server is never contacted
    timeout_s: float = 300.0
    poll_s: float = 0.5
    dry_run: bool = False
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _steps: int = field(default=0, init=False)

    # -- helpers

    def _read(self) -> ConfigFile:
        cf = read_config(self.config_path)
        if cf.dropped_comments:
            self.out(
                f"note: {cf.dropped_comments} comment line(s) below the leading comment block "
                f"of {self.config_path} are not kept when it is rewritten"
            )
        return cf

    def _step(self, text: str) -> None:
        self._steps += 1
        self.out(f"{self._steps}. {text}")

    def _server(self) -> ModelServer:
        assert self.server is not None, "a dry run never contacts the server"
        return self.server

    def _status(self, name: str) -> dict[int, VersionStatus]:
        return self._server().version_status(name)

    def _wait(self, what: str, check: Callable[[], tuple[bool, str]]) -> None:
        """Poll `check` (done?, what was seen) until done; WaitFailed after the timeout."""
        deadline = self.clock() + self.timeout_s
        last = ""
        while True:
            done, seen = check()
            if seen != last:
                self.out(f"   server: {seen}")
                last = seen
            if done:
                return
            if self.clock() >= deadline:
                raise WaitFailed(f"{what}: gave up after {self.timeout_s:g} s; last seen: {seen}")
            self.sleep(self.poll_s)

    def _seen_status(self, name: str) -> tuple[dict[int, VersionStatus] | None, str]:
        """The versions (None while unreachable: waits go on) and a line saying what was seen."""
        try:
            states = self._status(name)
        except ServerError as exc:
            return None, f"unreachable ({exc})"
        if not states:
            return {}, f"no version of {name} known"
        return states, ", ".join(f"version {v} {s.describe()}" for v, s in sorted(states.items()))

    def _wait_available(self, name: str, version: int, before: VersionStatus | None) -> None:
        # A version unloaded earlier is still reported END (with its old error, if any) until
        # the server re-reads the config: only an END seen after another state, or one that
        # differs from the state before the edit, is this load's outcome.
        moved = False  # seen in a state other than END: the server took up the edit

        def check() -> tuple[bool, str]:
            nonlocal moved
            states, seen = self._seen_status(name)
            if states is None:
                return False, seen
            now = states.get(version)
            if now is None:
                return False, seen + f" (version {version} not reported yet)"
            if now.state == "END" and not moved and now == before:
                return False, seen
            moved = True
            if now.state == "END":
                raise WaitFailed(f"version {version} of {name} failed to load: {now.describe()}")
            return now.state == "AVAILABLE", seen

        try:
            self._wait(f"version {version} of {name} AVAILABLE", check)
        except WaitFailed as exc:
            if moved:
                raise
            raise WaitFailed(
                f"{exc}. The server has not taken up the edited config: is it polling "
                f"{self.config_path} (--model_config_file_poll_wait_seconds)? A config it refuses "
                "is refused again on every poll: see its log"
            ) from exc

    def _wait_label(self, name: str, label: str, version: int) -> None:
        def check() -> tuple[bool, str]:
            try:
                got = self._server().label_version(name, label)
            except ServerError as exc:
                return False, f"unreachable ({exc})"
            shown = "not resolved" if got is None else f"version {got}"
            return got == version, f"label {label} of {name} -> {shown}"

        self._wait(f"label {label} of {name} on version {version}", check)

    def _wait_gone(self, name: str, version: int) -> None:
        def check() -> tuple[bool, str]:
            states, seen = self._seen_status(name)
            if states is None:
                return False, seen
            now = states.get(version)
            return now is None or now.state == "END", seen

        self._wait(f"version {version} of {name} unloaded", check)

    def _preflight(self, name: str) -> dict[int, VersionStatus]:
        """The server's view before anything is written; ServerError if it cannot be reached."""
        return self._status(name)

    # -- the commands

    def promote(self, name: str, version: int, label: str) -> None:
        """List `version` if needed, wait for it, then move `label` onto it."""
        self._steps = 0
        cf = self._read()
        model = find_model(cf.config, name)
        listed = listed_versions(model)
        old = model.version_labels.get(label)
        if old == version:
            self.out(f"{label} of {name} is already on version {version}: nothing to do")
            return
        listing = plan_list(cf.config, name, version, self.repository)
        if self.dry_run:
            self.out(f"dry run: nothing is written to {self.config_path}, no server is contacted")
            if listing is not None:
                self._step(
                    f"list version {version} of {name} (versions {_vs(listed)} -> "
                    f"{_vs([*listed, version])}) and write {self.config_path}"
                )
            self._step(
                f"wait until the server reports version {version} AVAILABLE "
                f"(up to {self.timeout_s:g} s; if it fails, unlist it again)"
                if listing is not None
                else f"check that the server reports version {version} AVAILABLE"
            )
            self._step(
                f"move {label} of {name}: {_v(old)} -> {version}, write "
                f"{self.config_path}, and wait until the server resolves {label} "
                f"to {version}"
            )
            return
        before = self._preflight(name).get(version)
        if listing is not None:
            save_config(cf, listing)
            self._step(
                f"listed version {version} of {name} in {self.config_path} "
                f"(versions {_vs(listed)} -> {_vs([*listed, version])})"
            )
            self.out(
                f"   waiting for {self._server().target} to load it "
                "(it re-reads the config every --model_config_file_poll_wait_seconds)"
            )
            try:
                self._wait_available(name, version, before)
            except WaitFailed as exc:
                self._unlist_after_failure(name, version)
                raise WaitFailed(
                    f"{exc}; version {version} is unlisted again and {label} stays on {_v(old)}"
                ) from exc
            self.out(f"   version {version} of {name} is AVAILABLE")
        else:
            self._step(
                f"version {version} of {name} is listed already; "
                "checking that the server has it AVAILABLE"
            )
            try:
                # No stale END to skip here: an END now is the outcome of its last load.
                self._wait_available(name, version, None)
            except WaitFailed as exc:
                raise Refused(f"{exc}: {label} of {name} is not moved") from exc
        self._move_label(name, label, version)

    def _unlist_after_failure(self, name: str, version: int) -> None:
        # Re-read: someone may have edited other models meanwhile; undo only our listing.
        cf = self._read()
        if version in listed_versions(find_model(cf.config, name)):
            save_config(cf, _drop_version(cf.config, name, version))
        self._step(
            f"unlisted version {version} of {name} again: {self.config_path} "
            "lists what it listed before"
        )

    def _move_label(self, name: str, label: str, version: int) -> None:
        cf = self._read()  # fresh: the wait may have lasted minutes
        old = find_model(cf.config, name).version_labels.get(label)
        available = available_versions(self._status(name))
        moved = plan_label_move(cf.config, name, label, version, available)
        if moved is None:
            self.out(f"{label} of {name} is already on version {version}")
            return
        save_config(cf, moved)
        self._step(f"moved {label} of {name}: {_v(old)} -> {version} in {self.config_path}")
        try:
            self._wait_label(name, label, version)
        except WaitFailed as exc:
            # Put the label back where it was, on a version still loaded: always accepted.
            cf = self._read()
            save_config(cf, _set_label(cf.config, name, label, old))
            self._step(f"put {label} of {name} back on {_v(old)}")
            raise WaitFailed(f"{exc}; {label} is back on {_v(old)}") from exc
        self.out(f"   the server now answers {label} of {name} with version {version}")

    def rollback(self, name: str, label: str, to: int | None = None) -> None:
        """Move `label` back to the previous version (listing it again first if needed)."""
        cf = self._read()
        target = rollback_target(cf.config, name, label, to)
        current = int(find_model(cf.config, name).version_labels[label])
        self.out(f"rolling {label} of {name} back: {current} -> {target}")
        self.promote(name, target, label)

    def retire(self, name: str, version: int) -> None:
        """Unlist a version no label points at and wait until the server has unloaded it."""
        self._steps = 0
        cf = self._read()
        listed = listed_versions(find_model(cf.config, name))
        new = plan_unlist(cf.config, name, version)
        remaining = [v for v in listed if v != version]
        if self.dry_run:
            self.out(f"dry run: nothing is written to {self.config_path}, no server is contacted")
            self._step(
                f"unlist version {version} of {name} (versions {_vs(listed)} -> "
                f"{_vs(remaining)}) and write {self.config_path}"
            )
            self._step(f"wait until the server reports version {version} END")
            return
        self._preflight(name)
        save_config(cf, new)
        self._step(
            f"unlisted version {version} of {name} in {self.config_path} "
            f"(versions {_vs(listed)} -> {_vs(remaining)})"
        )
        self._wait_gone(name, version)
        self.out(f"   version {version} of {name} is unloaded; its directory can be archived")

    def status(self, name: str) -> None:
        """Print each version (listed? state on the server) and each label (file vs server)."""
        cf = self._read()
        model = find_model(cf.config, name)
        listed = listed_versions(model)
        labels = dict(sorted(model.version_labels.items()))
        server = self._server()
        unreachable: ServerError | None = None
        try:
            states = server.version_status(name)
            resolved = {label: server.label_version(name, label) for label in labels}
        except ServerError as exc:
            unreachable, states, resolved = exc, {}, {}
        self.out(f"{name}: config {self.config_path}, server {server.target}")
        for v in sorted(set(listed) | set(states)):
            state = (
                states[v].describe()
                if v in states
                else ("unreachable" if unreachable else "does not report it")
            )
            on = labels_on(model, v)
            self.out(
                f"  version {v}: {'listed' if v in listed else 'not listed'}, "
                f"server {state}" + (f", labels {', '.join(on)}" if on else "")
            )
        for label, v in labels.items():
            line = f"  label {label}: config {v}"
            if unreachable is None:
                got = resolved[label]
                line += f", server {_v(got)}"
                if got != v:
                    line += (
                        " (not applied yet: the server re-reads the config on its next "
                        "poll; if this stays, check its log for a refused config)"
                    )
            self.out(line)
        if unreachable is not None:
            raise unreachable


def _v(version: int | None) -> str:
    return "(none)" if version is None else str(version)


def _vs(versions: Collection[int]) -> str:
    return ", ".join(str(v) for v in sorted(versions)) or "(none)"


def available_versions(states: Mapping[int, VersionStatus]) -> list[int]:
    return sorted(v for v, s in states.items() if s.state == "AVAILABLE")
