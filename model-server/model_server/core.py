"""The server core: config reloads, version labels, version states, loading and unloading.

Each rule follows a file of tensorflow/serving (docs/model-server.md has the table):
- ReloadConfig (model_servers/server_core.cc): the new config is checked, then STORED,
  then the label map is rebuilt (UpdateModelVersionLabelMap), and only then are models
  added or changed. A refused label map therefore leaves the old labels and the old
  versions serving, and the same refusal repeats at every poll until the file changes.
- Labels (server_core.cc UpdateModelVersionLabelMap): a label must point at an AVAILABLE
  version. With --allow_version_labels_for_unavailable_models, a label that is new, or
  stays on the version it already names, may point at a version not yet available;
  moving a label that is in use still needs its target AVAILABLE.
- Version states (core/servable_state.h, core/loader_harness.h): START when a version
  is aspired, LOADING while it loads and its warm-up requests are replayed
  (servables/tensorflow/saved_model_warmup_util.cc), AVAILABLE, UNLOADING, END (with
  the error when a load failed). The monitor keeps END versions, as
  core/servable_state_monitor.cc does, so GetModelStatus still reports them.
- Which versions load or unload first (core/availability_preserving_policy.cc): unload
  the lowest unaspired ready version when no version is aspired, or an aspired one is
  ready, or more than one unaspired one is ready; else load the highest new aspired one.
- Requests (core/basic_manager.cc, server_core.cc ServableRequestFromModelSpec): a
  version, a label, or the latest AVAILABLE version; NOT_FOUND "Servable not found for
  request: Specific(name, v)" / "Latest(name)".
- Per-model batching (servables/tensorflow/saved_model_bundle_factory.cc,
  bundle_factory_util.cc GetPerModelBatchingParams): with
  --enable_per_model_batching_parameters, a version's batching_params.pbtxt is read when
  it loads (a bad one fails the load) and gives its queues their options; a version
  without one runs its requests directly, never through the batch threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from model_server import config as cfg
from model_server.batching import BatchingOptions, BatchScheduler, per_model_options
from model_server.errors import (
    ServingError,
    failed_precondition,
    invalid_argument,
    not_found,
    unavailable,
)
from model_server.servable import DEFAULT_SIGNATURE, Servable

log = logging.getLogger("model_server.core")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionStatus:
    state: str
    error: ServingError | None = None
    servable: Servable | None = None


@dataclass(frozen=True)
class CoreOptions:
    allow_version_labels_for_unavailable_models: bool = False
    file_system_poll_wait_seconds: float = 1.0
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    enable_per_model_batching_params: bool = False


@dataclass
class CoreEvents:
    """Hooks for metrics: (model, version, seconds) once loaded; (model, version, records)
    once warmed up."""

    loaded: list[Callable[[str, int, float], None]] = field(default_factory=list)
    warmup_replayed: list[Callable[[str, int, int], None]] = field(default_factory=list)


class ServerCore:
    def __init__(self, options: CoreOptions, scheduler: BatchScheduler | None = None) -> None:
        self.options, self.scheduler = options, scheduler
        self.events = CoreEvents()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._reload_lock = threading.Lock()  # one ReloadConfig at a time (config_mu_)
        self._config: Any = None  # the stored config (config_), set before the label check
        self._sources: dict[str, Any] = {}  # models the file-system source follows
        self._states: dict[str, dict[int, VersionStatus]] = {}
        self._failed: set[tuple[str, int]] = set()  # failed loads, retried once re-aspired
        self._labels: dict[str, dict[str, int]] | None = None
        self._queue_keys: set[tuple[str, int, str]] = set()  # batching queues per version
        # per-model batching: each loaded version's options, None = not batched
        self._batching: dict[tuple[str, int], BatchingOptions | None] = {}
        self._dirty = False
        self._stopping = False
        self._manager = threading.Thread(target=self._manage, name="model-manager", daemon=True)
        self._manager.start()

    # ---- config -------------------------------------------------------------------------

    def reload_config(self, new_config: Any) -> None:
        """ServerCore::ReloadConfig. Raises ServingError when the config is refused."""
        with self._reload_lock:
            first = self._config is None
            cfg.validate(new_config)
            if new_config.WhichOneof("config") is None:
                log.info("Taking no action for empty config.")
                return
            self._config = new_config  # stored before the label check, as upstream
            entries = cfg.model_entries(new_config)
            with self._lock:
                self._update_labels()
                new_models = set(entries) - set(self._sources)
                self._sources = dict(entries)
                self._dirty = True
                self._changed.notify_all()
            if first:
                for entry in entries.values():
                    if not cfg.versions_on_disk(entry.base_path):
                        raise cfg.no_versions_error(entry)
            self._wait_until_available(new_models)

    def _update_labels(self) -> None:
        new_map: dict[str, dict[str, int]] = {}
        for name, entry in cfg.model_entries(self._config).items():
            states = self._states.get(name, {})
            for label, version in entry.version_labels.items():
                allow = False
                if self.options.allow_version_labels_for_unavailable_models:
                    existing = (self._labels or {}).get(name, {}).get(label)
                    allow = existing is None or existing == version
                status = states.get(version)
                if not allow and (status is None or status.state != AVAILABLE):
                    raise failed_precondition(
                        f"Request to assign label to version {version} of model {name}, "
                        "which is not currently available for inference"
                    )
                new_map.setdefault(name, {})[label] = version
        self._labels = new_map

    def _wait_until_available(self, models: set[str]) -> None:
        """Block until each new model's latest version is AVAILABLE or has failed for good."""

        def settled(name: str) -> bool:
            entry = self._sources.get(name)
            if entry is None:
                return True
            aspired = cfg.aspired_versions(entry, cfg.versions_on_disk(entry.base_path))
            if not aspired:
                return True
            status = self._states.get(name, {}).get(aspired[-1])
            return status is not None and (
                status.state == AVAILABLE or (status.state == END and status.error is not None)
            )

        with self._changed:
            self._changed.wait_for(lambda: self._stopping or all(settled(m) for m in models))
            failed = [
                (name, version, status)
                for name in sorted(models)
                for version, status in sorted(self._states.get(name, {}).items())
                if status.error is not None
            ]
        if failed:
            details = "".join(
                f"{{{{name: {name} version: {version}}} due to error: {status.error}}}, "
                for name, version, status in failed
            )
            raise ServingError(
                grpc.StatusCode.UNKNOWN,
                f"{len(failed)} model(s) did not become available: {{{details}}}",
            )

    # ---- requests -----------------------------------------------------------------------

    def servable(self, spec: Any) -> Servable:
        """The version a ModelSpec asks for (ServerCore::GetServableHandle)."""
        name = spec.name
        if not name:
            raise invalid_argument("Missing model name in request.")
        which = spec.WhichOneof("version_choice")
        with self._lock:
            if which == "version_label":
                if self._labels is None:
                    raise unavailable(f"Model labels does not init yet.{spec.version_label}")
                version = self._labels.get(name, {}).get(spec.version_label)
                if version is None:
                    raise invalid_argument(
                        f"Unrecognized servable version label: {spec.version_label}"
                    )
                return self._specific(name, version)
            if which == "version":
                return self._specific(name, int(spec.version.value))
            ready = [
                (v, s.servable)
                for v, s in self._states.get(name, {}).items()
                if s.state == AVAILABLE and s.servable is not None
            ]
            if not ready:
                raise not_found(f"Servable not found for request: Latest({name})")
            return max(ready, key=lambda pair: pair[0])[1]

    def _specific(self, name: str, version: int) -> Servable:
        status = self._states.get(name, {}).get(version)
        if status is None or status.state != AVAILABLE or status.servable is None:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return status.servable

    def predict(
        self, servable: Servable, signature: str, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        signature = signature or DEFAULT_SIGNATURE
        servable.check_inputs(signature, inputs)
        if self.scheduler is None:
            return servable.run(signature, inputs)
        key = (servable.name, servable.version, signature)
        options = None
        if self.options.enable_per_model_batching_params:
            options = self._batching.get(key[:2])
            if options is None:  # no batching_params.pbtxt: not batched
                return servable.run(signature, inputs)
        with self._lock:
            # Under the lock, so an unload (which first marks the version UNLOADING) never
            # races a request into recreating the queue it is removing.
            self._specific(servable.name, servable.version)
            queue = self.scheduler.queue(key, lambda batch: servable.run(signature, batch), options)
            self._queue_keys.add(key)
        return queue.submit(dict(inputs))

    def status(self, name: str, version: int | None) -> list[tuple[int, VersionStatus]]:
        """GetModelStatus (model_servers/get_model_status_impl.cc): labels play no part."""
        with self._lock:
            versions = self._states.get(name, {})
            if version is not None:
                if version not in versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [(version, versions[version])]
            if not versions:
                raise not_found(f"Could not find any versions of model {name}")
            return sorted(versions.items(), key=lambda item: -item[0])

    # ---- the manager: loads and unloads, one at a time ------------------------------------

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._manager.join(timeout=30)

    def _manage(self) -> None:
        poll = self.options.file_system_poll_wait_seconds
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._dirty or self._stopping, timeout=poll if poll > 0 else None
                )
                if self._stopping:
                    return
                self._dirty = False
            try:
                while (action := self._next_action()) is not None:
                    self._run(*action)
            except Exception:  # the manager must outlive any one bad version
                log.exception("model manager step failed")

    def _next_action(self) -> tuple[str, str, int, Any] | None:
        with self._lock:
            if self._stopping:
                return None
            names = set(self._sources) | set(self._states)
            for name in sorted(names):
                entry = self._sources.get(name)
                aspired: list[int] = []
                if entry is not None:
                    aspired = cfg.aspired_versions(entry, cfg.versions_on_disk(entry.base_path))
                states = self._states.setdefault(name, {})
                for failed in list(self._failed):
                    if failed[0] == name and failed[1] not in aspired:
                        self._failed.discard(failed)  # unlisted: a new listing retries it
                ready_aspired = any(
                    states.get(v) is not None and states[v].state == AVAILABLE for v in aspired
                )
                unaspired_ready = sorted(
                    v for v, s in states.items() if s.state == AVAILABLE and v not in aspired
                )
                if unaspired_ready and (not aspired or ready_aspired or len(unaspired_ready) > 1):
                    return ("unload", name, unaspired_ready[0], None)
                new = [
                    v
                    for v in aspired
                    if (v not in states or states[v].state == END) and (name, v) not in self._failed
                ]
                if new and entry is not None:
                    version = max(new)
                    states[version] = VersionStatus(START)
                    self._changed.notify_all()
                    return ("load", name, version, cfg.version_path(entry.base_path, version))
        return None

    def _set(self, name: str, version: int, status: VersionStatus) -> None:
        with self._changed:
            self._states.setdefault(name, {})[version] = status
            self._changed.notify_all()

    def _run(self, action: str, name: str, version: int, path: Any) -> None:
        if action == "unload":
            log.info("Unloading servable version {name: %s version: %d}", name, version)
            with self._lock:
                old = self._states[name][version]
            self._set(name, version, VersionStatus(UNLOADING, servable=old.servable))
            if self.scheduler is not None:
                with self._lock:
                    keys = {k for k in self._queue_keys if k[:2] == (name, version)}
                    self._queue_keys -= keys
                for key in keys:
                    self.scheduler.remove_queue(key)
            with self._lock:
                self._batching.pop((name, version), None)
            self._set(name, version, VersionStatus(END))
            log.info("Done unloading servable version {name: %s version: %d}", name, version)
            return
        self._set(name, version, VersionStatus(LOADING))
        log.info("Loading servable version {name: %s version: %d} from %s", name, version, path)
        started = time.perf_counter()
        try:
            servable = Servable.load(name, version, path)
            batching = None
            if self.scheduler is not None and self.options.enable_per_model_batching_params:
                batching = per_model_options(path)  # a bad file fails the load, before warm-up
                log.info(
                    "Servable version {name: %s version: %d}: %s",
                    name,
                    version,
                    "batched with its batching_params.pbtxt" if batching else "not batched",
                )
            if self.options.enable_model_warmup:
                self._warm_up(servable)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, ServingError)
                else ServingError(grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")
            )
            log.error(
                "Loading servable version {name: %s version: %d} failed: %s", name, version, error
            )
            with self._lock:
                self._failed.add((name, version))
            self._set(name, version, VersionStatus(END, error=error))
            return
        with self._lock:
            self._batching[(name, version)] = batching
        self._set(name, version, VersionStatus(AVAILABLE, servable=servable))
        log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
        for hook in self.events.loaded:
            hook(name, version, time.perf_counter() - started)

    def _warm_up(self, servable: Servable) -> None:
        """Replay assets.extra/tf_serving_warmup_requests before the version is AVAILABLE."""
        import tensorflow as tf

        records = servable.warmup_records()
        replayed = 0
        for _ in range(max(1, self.options.num_request_iterations_for_warmup)):
            for record in records:
                kind = record.WhichOneof("log_type")
                if kind != "predict_log":
                    raise invalid_argument(f"Unsupported log_type for warmup: {kind}")
                request = record.predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
                servable.check_inputs(signature, inputs)
                servable.run(signature, inputs)
                replayed += 1
        if records:
            log.info(
                "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                servable.path,
                len(records),
            )
        for hook in self.events.warmup_replayed:
            hook(servable.name, servable.version, replayed)
