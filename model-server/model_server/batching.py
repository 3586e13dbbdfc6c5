"""TF Serving's cross-request batching (--enable_batching), in threads.

One `BatchScheduler` per server, shared by every model version and signature, as
model_servers/server.cc shares one SharedBatchScheduler
(tensorflow/core/kernels/batching_util/shared_batch_scheduler.h in TF core): a pool of
`num_batch_threads` threads runs closed batches from every queue, round-robin between
queues. Each (model, version, signature) gets a `BatchQueue`; `BatchQueue.submit` blocks
its caller until the caller's rows of the batch result are ready.

With --enable_per_model_batching_parameters, each version's own batching_params.pbtxt
(beside its saved_model.pb) gives the options of its queues, a version without one is
not batched, and only the thread pool still comes from --batching_parameters_file
(`per_model_options`).

Upstream files each rule follows:
  tensorflow_serving/servables/tensorflow/session_bundle_config.proto  the options
  tensorflow_serving/servables/tensorflow/bundle_factory_util.{h,cc}   option validation,
      per-model parameters (GetPerModelBatchingParams, kBatchingParamsFilename)
  tensorflow_serving/servables/tensorflow/saved_model_bundle_factory.cc  no file, no batching
  tensorflow_serving/model_servers/main.cc  --enable_per_model_batching_parameters
  tensorflow_serving/batching/batching_session.cc   task size, merge, padding, split
  tensorflow_serving/batching/batching_util.cc      variable-length padding, allowed sizes
  TF core shared_batch_scheduler.h (not checked out)  queueing, timeouts, queue-full
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_server import protos
from model_server.errors import (
    ServingError,
    failed_precondition,
    internal,
    invalid_argument,
    unavailable,
)
from model_server.protos import ConfigError

__all__ = [
    "PER_MODEL_FILE",
    "BatchQueue",
    "BatchScheduler",
    "BatchStats",
    "BatchingOptions",
    "RunFn",
    "per_model_options",
]

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# batching_util.cc PadTensorOfSpecificType: Eigen padding is instantiated for ranks 1..6 only.
_MAX_PADDABLE_RANK = 6

_QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


class _OptionError(ValueError):
    """An invalid option, naming the BatchingParameters field it came from."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def _default_num_batch_threads() -> int:
    # TF core's default is port::MaxParallelism(), the number of schedulable CPUs.
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchingOptions:
    """The options of --batching_parameters_file (a BatchingParameters message).

    Defaults are those of TF core's BasicBatchScheduler / SharedBatchScheduler options
    (max_batch_size 1000, batch_timeout_micros 0, max_enqueued_batches 10,
    num_batch_threads = number of CPUs); thread_pool_name is the one
    model_servers/server.cc sets when --enable_batching comes without a file.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=_default_num_batch_threads)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "model_server_batch_threads"
    enable_large_batch_splitting: bool = False

    def __post_init__(self) -> None:
        # A list would make the frozen dataclass unhashable and mutable from outside.
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            value = getattr(self, name)
            if value < 1:
                raise _OptionError(name, f"{name} must be positive; was {value}")
        if self.batch_timeout_micros < 0:
            raise _OptionError(
                "batch_timeout_micros",
                f"batch_timeout_micros must not be negative; was {self.batch_timeout_micros}",
            )
        sizes = self.allowed_batch_sizes
        if any(size < 1 for size in sizes):
            raise _OptionError(
                "allowed_batch_sizes", f"allowed_batch_sizes entries must be positive; got {sizes}"
            )
        # batching_session.cc CreateBasicBatchingSession's wording; TF Serving checks the
        # order only with large-batch splitting (b/161641195), we always do, since a
        # decreasing list would make RoundToLowestAllowedBatchSize pick a wrong size.
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise _OptionError(
                "allowed_batch_sizes",
                f"allowed_batch_sizes entries must be monotonically increasing; got {sizes}",
            )
        # bundle_factory_util.cc WrapSessionForBatching: message verbatim.
        if sizes and sizes[-1] != self.max_batch_size:
            raise _OptionError(
                "allowed_batch_sizes",
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {self.max_batch_size}",
            )
        if self.enable_large_batch_splitting:
            # Splitting one request across batches (batching_session.cc SplitInputTask) is
            # not implemented; refusing beats silently batching differently from TF Serving.
            raise _OptionError(
                "enable_large_batch_splitting",
                "enable_large_batch_splitting: true is not supported by talkative model-server; "
                "remove it (requests larger than max_batch_size are then refused, as TF "
                "Serving does without splitting)",
            )

    @classmethod
    def from_proto(cls, params: Any) -> BatchingOptions:
        """Options from a `protos.BatchingParameters`; unset wrapper fields keep the defaults.

        As bundle_factory_util.h GetQueueOptions / CreateBatchScheduler read them;
        max_execution_batch_size only matters with large-batch splitting and is ignored.
        """
        kwargs: dict[str, Any] = {}
        for name in (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
            "thread_pool_name",
            "enable_large_batch_splitting",
        ):
            if params.HasField(name):
                kwargs[name] = getattr(params, name).value
        return cls(
            allowed_batch_sizes=tuple(int(size) for size in params.allowed_batch_sizes),
            pad_variable_length_inputs=bool(params.pad_variable_length_inputs),
            **kwargs,
        )

    @classmethod
    def from_text(cls, text: str, source: str) -> BatchingOptions:
        """Parse a text-format BatchingParameters; any problem is a ConfigError naming `source`."""
        params = protos.parse_text(protos.BatchingParameters, text, source)
        try:
            return cls.from_proto(params)
        except _OptionError as e:
            line = _field_line(text, e.field_name)
            raise ConfigError(str(e), source=source, line=line, column=1 if line else None) from e

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BatchingOptions:
        """Read --batching_parameters_file (server.cc: ParseProtoTextFile<BatchingParameters>)."""
        source = os.fspath(path)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read batching parameters: {e}", source=source) from e
        return cls.from_text(text, source)


# bundle_factory_util.cc kBatchingParamsFilename, looked up in the SavedModel folder.
PER_MODEL_FILE = "batching_params.pbtxt"


def per_model_options(version_dir: str | os.PathLike[str]) -> BatchingOptions | None:
    """A version's own batching options, or None when it has no batching_params.pbtxt.

    bundle_factory_util.cc GetPerModelBatchingParams with per_model_configured: the file is
    `<version dir>/batching_params.pbtxt`; when it is absent the version gets no batching
    at all (saved_model_bundle_factory.cc then wraps the session plainly); a file that does
    not parse, or fails WrapSessionForBatching's check, fails the load. Its
    num_batch_threads and thread_pool_name are not used: the batch threads are one pool
    for every model (main.cc's help for --enable_per_model_batching_parameters).
    """
    path = Path(version_dir) / PER_MODEL_FILE
    if not path.is_file():
        return None
    source = os.fspath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read batching parameters: {e}", source=source) from e
    params = protos.parse_text(protos.BatchingParameters, text, source)
    for name in ("num_batch_threads", "thread_pool_name"):
        params.ClearField(name)
    try:
        return BatchingOptions.from_proto(params)
    except _OptionError as e:
        line = _field_line(text, e.field_name)
        raise ConfigError(str(e), source=source, line=line, column=1 if line else None) from e


def _field_line(text: str, field_name: str) -> int | None:
    """1-based line of the last setting of `field_name` (the one that wins), if found."""
    pattern = re.compile(rf"^\s*{re.escape(field_name)}\b")
    found = None
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            found = number
    return found


@dataclass(frozen=True)
class BatchStats:
    """Counters of the batches run (a snapshot).

    `sizes` counts (real rows, padded rows) per batch; a Counter rather than a list so a
    long-running server's memory stays bounded.
    """

    batches_run: int = 0
    failed_batches: int = 0
    tasks_run: int = 0
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)


class _MutableStats:
    def __init__(self) -> None:
        self.batches_run = 0
        self.failed_batches = 0
        self.tasks_run = 0
        self.sizes: Counter[tuple[int, int]] = Counter()

    def record(self, real: int, padded: int, tasks: int, failed: bool) -> None:
        self.batches_run += 1
        self.tasks_run += tasks
        self.failed_batches += int(failed)
        self.sizes[(real, padded)] += 1

    def snapshot(self) -> BatchStats:
        return BatchStats(
            self.batches_run, self.failed_batches, self.tasks_run, Counter(self.sizes)
        )


class _Task:
    """One submit() call: its inputs and, once answered, its outputs or its error."""

    __slots__ = ("_done", "error", "inputs", "outputs", "size")

    def __init__(self, inputs: dict[str, np.ndarray], size: int) -> None:
        self.inputs, self.size = inputs, size
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: ServingError | None = None
        self._done = threading.Event()

    @property
    def answered(self) -> bool:
        return self._done.is_set()

    def answer(
        self, outputs: dict[str, np.ndarray] | None = None, error: ServingError | None = None
    ) -> None:
        # Only the thread that owns the task (taken from its queue under the scheduler's
        # lock) answers it; the check keeps a bug from overwriting a delivered answer.
        if self._done.is_set():
            return
        self.outputs, self.error = outputs, error
        self._done.set()

    def wait(self) -> dict[str, np.ndarray]:
        self._done.wait()
        if self.error is not None:
            # A fresh exception per caller: one error answers a whole batch, and raising a
            # shared instance from several threads would tangle its __traceback__.
            raise ServingError(self.error.code, self.error.message) from self.error.__cause__
        assert self.outputs is not None
        return self.outputs


class _Batch:
    def __init__(self, opened_at: float) -> None:
        # The batch timeout runs from the first task's arrival (shared_batch_scheduler.h:
        # open_batch_start_time_micros_ is set when a task enters an empty batch).
        self.opened_at = opened_at
        self.tasks: list[_Task] = []
        self.size = 0

    def add(self, task: _Task) -> None:
        self.tasks.append(task)
        self.size += task.size


def _task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """Rows of one task: dim 0, equal for all inputs (batching_util.h ComputeTensorBatchSize)."""
    if not inputs:
        raise invalid_argument("Batching Run() must have at least one input tensor")
    size: int | None = None
    for name, tensor in inputs.items():
        if tensor.ndim == 0:
            raise invalid_argument(
                "Batching Run() input tensors must have at least one dimension "
                f"(input '{name}' is a scalar)"
            )
        if size is None:
            size = int(tensor.shape[0])
        elif tensor.shape[0] != size:
            raise invalid_argument(
                "Batching Run() input tensors must have equal 0th-dimension size"
            )
    assert size is not None
    if size == 0:
        # Nothing to batch, and a zero-row task cannot supply padding rows (MergeInputTensors
        # pads with the last task's first row).
        raise invalid_argument(
            "Batching Run() input tensors must have at least one row; the 0th-dimension size is 0"
        )
    return size


def _round_to_allowed(allowed: tuple[int, ...], size: int) -> int:
    """batching_util.cc RoundToLowestAllowedBatchSize."""
    for allowed_size in allowed:
        if allowed_size >= size:
            return allowed_size
    return size


def _pad_to_max_dims(name: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
    """Pad dims >= 1 to the batch's largest, at the end, with each tensor's own flat[0].

    batching_util.cc CalculateMaxDimSizes / AddPadding / PadTensor.
    """
    rank = tensors[0].ndim
    for tensor in tensors:
        if tensor.ndim != rank:
            raise failed_precondition(
                f"Tensors with name '{name}' from different tasks have different ranks "
                f"({rank} and {tensor.ndim}) and cannot be padded to one shape."
            )
    if rank > _MAX_PADDABLE_RANK:
        # TF Serving refuses these whenever padding is on, needed or not.
        raise invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
    max_dims = tuple(max(t.shape[d] for t in tensors) for d in range(1, rank))
    padded = []
    for tensor in tensors:
        target = (tensor.shape[0], *max_dims)
        if tensor.shape == target:
            padded.append(tensor)
            continue
        if tensor.size == 0:
            raise invalid_argument("Got empty tensor in batch of non-empty tensors.")
        out = np.full(target, tensor.reshape(-1)[0], dtype=tensor.dtype)
        out[tuple(slice(0, n) for n in tensor.shape)] = tensor
        padded.append(out)
    return padded


def _concat(tensors: list[np.ndarray]) -> np.ndarray:
    first = tensors[0].dtype
    for tensor in tensors[1:]:
        # Fixed-width bytes/str of different widths concatenate fine; other mixes would be
        # silently converted by numpy where TF's tensor::Concat fails.
        same_kind_text = tensor.dtype.kind == first.kind and first.kind in "SU"
        if tensor.dtype != first and not same_kind_text:
            raise internal(
                "Tensor concat operation failed: tasks of one batch have different dtypes "
                f"({first} and {tensor.dtype})"
            )
    return np.concatenate(tensors, axis=0)


def _merge_inputs(
    tasks: list[_Task], options: BatchingOptions
) -> tuple[dict[str, np.ndarray], int, int]:
    """batching_session.cc MergeInputTensors: (merged inputs, real rows, padded rows)."""
    names = list(tasks[0].inputs)
    for task in tasks[1:]:
        if task.inputs.keys() != tasks[0].inputs.keys():
            raise internal("One or more tasks does not conform to batch signature")
    real = sum(task.size for task in tasks)
    padded_size = _round_to_allowed(options.allowed_batch_sizes, real)
    merged: dict[str, np.ndarray] = {}
    for name in names:
        tensors = [task.inputs[name] for task in tasks]
        if options.pad_variable_length_inputs:
            tensors = _pad_to_max_dims(name, tensors)
        else:
            reference = tensors[0].shape
            for tensor in tensors[1:]:
                if tensor.ndim != len(reference) or tensor.shape[1:] != reference[1:]:
                    raise failed_precondition(
                        f"Tensors with name '{name}' from different tasks have different shapes "
                        "and padding is turned off. Set pad_variable_length_inputs to true, or "
                        "ensure that all tensors with the same name have equal dimensions "
                        "starting with the first dim."
                    )
        if padded_size > real:
            # Copies of the LAST task's first row: a row known to be valid input.
            filler = tensors[-1][:1]
            tensors.append(np.repeat(filler, padded_size - real, axis=0))
        merged[name] = _concat(tensors)
    return merged, real, padded_size


def _split_outputs(
    outputs: object, tasks: list[_Task], padded_size: int
) -> list[dict[str, np.ndarray]]:
    """batching_session.cc SplitOutputTensors: each task's rows; padding rows are dropped."""
    if not isinstance(outputs, Mapping):
        raise internal(f"Batched run returned {type(outputs).__name__}, not a dict of tensors")
    arrays = {str(name): np.asarray(value) for name, value in outputs.items()}
    for name, tensor in arrays.items():
        # FAILED_PRECONDITION, as upstream: the model does not keep the batch dimension.
        if tensor.ndim == 0:
            raise failed_precondition(f"Batched output tensor has 0 dimensions (output '{name}')")
        if tensor.shape[0] != padded_size:
            raise failed_precondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                f"dimension sizes of the input tensors (output '{name}' has "
                f"{tensor.shape[0]} rows; the batch has {padded_size})"
            )
    results = []
    offset = 0
    for task in tasks:
        results.append({name: t[offset : offset + task.size] for name, t in arrays.items()})
        offset += task.size
    return results


class BatchQueue:
    """The batching queue of one (model, version, signature); made by BatchScheduler.queue.

    All mutable state is guarded by the scheduler's condition.
    """

    def __init__(
        self, scheduler: BatchScheduler, key: Hashable, run: RunFn, options: BatchingOptions
    ) -> None:
        self.key, self.options = key, options
        self._scheduler, self._run = scheduler, run
        self._closed_batches: deque[_Batch] = deque()
        self._open: _Batch | None = None
        self._removed = False
        self._running_tasks = 0
        self._stats = _MutableStats()

    # -- public --------------------------------------------------------------------------

    def submit(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run `inputs` as part of a batch; block until this task's output rows are ready.

        Raises ServingError: INVALID_ARGUMENT for a malformed or oversized task, UNAVAILABLE
        when the queue is full or gone, else whatever the batch failed with.
        """
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        task = _Task(arrays, _task_size(arrays))
        self._scheduler._enqueue(self, task)
        return task.wait()

    @property
    def stats(self) -> BatchStats:
        with self._scheduler._cond:
            return self._stats.snapshot()

    @property
    def num_enqueued_tasks(self) -> int:
        """Tasks waiting in batches that no thread has taken yet."""
        with self._scheduler._cond:
            return self._enqueued_tasks_locked()

    def wait_for_enqueued(self, count: int, timeout: float | None = None) -> bool:
        """Block until at least `count` tasks wait in this queue; False on timeout."""
        with self._scheduler._cond:
            return self._scheduler._cond.wait_for(
                lambda: self._enqueued_tasks_locked() >= count, timeout
            )

    # -- under the scheduler's lock ------------------------------------------------------

    def _enqueued_tasks_locked(self) -> int:
        open_tasks = len(self._open.tasks) if self._open else 0
        return open_tasks + sum(len(b.tasks) for b in self._closed_batches)

    def _add_locked(self, task: _Task, now: float) -> None:
        """shared_batch_scheduler.h Queue::Schedule (without splitting)."""
        limit = self.options.max_batch_size
        if task.size > limit:
            raise invalid_argument(
                f"Task size {task.size} is larger than maximum input batch size {limit}"
            )
        if self._open is not None and self._open.size + task.size > limit:
            # TF always keeps one open batch in batches_, so closing this one and opening
            # another makes len(closed) + 2 batches; the limit counts the open one.
            if len(self._closed_batches) + 1 >= self.options.max_enqueued_batches:
                raise unavailable(_QUEUE_FULL)
            self._closed_batches.append(self._open)
            self._open = None
        if self._open is None:
            self._open = _Batch(opened_at=now)
        self._open.add(task)

    def _open_deadline_locked(self) -> float | None:
        if self._open is None:
            return None
        return self._open.opened_at + self.options.batch_timeout_micros / 1e6

    def _take_batch_locked(self, now: float) -> _Batch | None:
        """The next batch a free thread may run: closed ones first, in order; then the open
        one once full, timed out or its queue removed (shared_batch_scheduler.h
        IsOpenBatchSchedulable)."""
        batch: _Batch | None = None
        if self._closed_batches:
            batch = self._closed_batches.popleft()
        elif self._open is not None:
            deadline = self._open_deadline_locked()
            assert deadline is not None
            if self._open.size >= self.options.max_batch_size or self._removed or now >= deadline:
                batch, self._open = self._open, None
        if batch is not None:
            self._running_tasks += len(batch.tasks)
        return batch

    def _drained_locked(self) -> bool:
        return not self._closed_batches and self._open is None and self._running_tasks == 0

    def _fail_pending_locked(self, error: ServingError) -> None:
        pending = list(self._closed_batches)
        if self._open is not None:
            pending.append(self._open)
        self._closed_batches.clear()
        self._open = None
        for batch in pending:
            for task in batch.tasks:
                task.answer(error=error)

    # -- in a batch thread, without the lock ---------------------------------------------

    def _process(self, batch: _Batch) -> tuple[int, int, bool]:
        """batching_session.cc ProcessBatch: merge, run, split; every task gets one answer."""
        tasks = batch.tasks
        real, padded = batch.size, batch.size
        error: ServingError | None = None
        try:
            merged, real, padded = _merge_inputs(tasks, self.options)
            results = _split_outputs(self._run(merged), tasks, padded)
            for task, outputs in zip(tasks, results, strict=True):
                task.answer(outputs=outputs)
        except ServingError as e:
            error = e
        except Exception as e:
            error = internal(f"{type(e).__name__}: {e}")
            error.__cause__ = e  # callers' tracebacks then show where the batch failed
        finally:
            # Also reached on BaseException (e.g. KeyboardInterrupt): no caller is left waiting.
            if error is None and not all(task.answered for task in tasks):
                error = internal("Batch processing was interrupted")
            if error is not None:
                for task in tasks:
                    task.answer(error=error)
        return real, padded, error is not None


class BatchScheduler:
    """The server's one shared batch scheduler: `num_batch_threads` threads, many queues.

    shared_batch_scheduler.h: threads take schedulable batches from the queues in
    round-robin order; a free thread with nothing schedulable sleeps until a task arrives
    or the earliest open batch times out.
    """

    def __init__(self, options: BatchingOptions | None = None) -> None:
        self.options = options if options is not None else BatchingOptions()
        self._cond = threading.Condition()
        self._queues: dict[Hashable, BatchQueue] = {}
        # Queues threads serve: the live ones plus removed ones that still hold tasks.
        self._active: list[BatchQueue] = []
        self._next = 0
        self._closed = False
        self._stats = _MutableStats()
        self._threads = [
            threading.Thread(
                target=self._thread_main, name=f"{self.options.thread_pool_name}_{i}", daemon=True
            )
            for i in range(self.options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> BatchScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def queue(
        self, key: Hashable, run: RunFn, options: BatchingOptions | None = None
    ) -> BatchQueue:
        """The queue for `key` (e.g. (model, version, signature)), made on first use.

        `options` defaults to the scheduler's; their num_batch_threads / thread_pool_name
        are ignored (the threads belong to the scheduler). An existing queue keeps its `run`.
        """
        with self._cond:
            if self._closed:
                raise unavailable("The batch scheduler is closed")
            existing = self._queues.get(key)
            if existing is not None:
                return existing
            queue = BatchQueue(self, key, run, options if options is not None else self.options)
            self._queues[key] = queue
            self._active.append(queue)
            return queue

    def remove_queue(self, key: Hashable, *, wait: bool = True) -> None:
        """Stop accepting tasks for `key`; tasks already queued still run, at once.

        With `wait`, block until they have been answered (as TF's queue destructor does),
        so the caller may then release the model; never waits when called from a batch
        thread, which would deadlock.
        """
        with self._cond:
            queue = self._queues.pop(key, None)
            if queue is None:
                return
            queue._removed = True
            self._cond.notify_all()
            if wait and threading.current_thread() not in self._threads:
                self._cond.wait_for(lambda: queue._drained_locked() or self._closed)
            self._drop_if_drained_locked(queue)

    def close(self, timeout: float | None = None) -> bool:
        """Stop the threads; tasks not yet taken by a thread fail with UNAVAILABLE.

        Batches already running finish and are answered first: this waits for them, at
        most `timeout` seconds in all (None: as long as they take). True once every batch
        thread has stopped; False if one is still running a batch (it is a daemon thread).
        """
        with self._cond:
            if not self._closed:
                self._closed = True
                error = unavailable("The batch scheduler was shut down before this task ran")
                for queue in self._active:
                    queue._fail_pending_locked(error)
                self._queues.clear()
                self._cond.notify_all()
        current = threading.current_thread()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread is not current:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads if t is not current)

    @property
    def stats(self) -> BatchStats:
        """Counters over all queues."""
        with self._cond:
            return self._stats.snapshot()

    # -- internals ---------------------------------------------------------------------------

    def _enqueue(self, queue: BatchQueue, task: _Task) -> None:
        with self._cond:
            if self._closed:
                raise unavailable("The batch scheduler is closed")
            if queue._removed:
                raise unavailable(
                    "The batch scheduling queue to which this task was submitted was removed "
                    "(its model version is unloading)"
                )
            queue._add_locked(task, time.monotonic())
            self._cond.notify_all()

    def _drop_if_drained_locked(self, queue: BatchQueue) -> None:
        if queue._removed and queue._drained_locked() and queue in self._active:
            self._active.remove(queue)

    def _next_batch_locked(self) -> tuple[BatchQueue | None, _Batch | None, float | None]:
        """(queue, batch) to run now, or (None, None, seconds until an open batch is due)."""
        now = time.monotonic()
        count = len(self._active)
        earliest: float | None = None
        for i in range(count):
            index = (self._next + i) % count
            queue = self._active[index]
            batch = queue._take_batch_locked(now)
            if batch is not None:
                # Round-robin: the next search starts after the queue just served.
                self._next = (index + 1) % count
                return queue, batch, None
            deadline = queue._open_deadline_locked()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return None, None, None if earliest is None else max(0.0, earliest - now)

    def _thread_main(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    queue, batch, wait_s = self._next_batch_locked()
                    if queue is not None and batch is not None:
                        break
                    self._cond.wait(wait_s)
            real, padded, failed = queue._process(batch)
            with self._cond:
                queue._running_tasks -= len(batch.tasks)
                for stats in (queue._stats, self._stats):
                    stats.record(real, padded, len(batch.tasks), failed)
                self._drop_if_drained_locked(queue)
                self._cond.notify_all()
