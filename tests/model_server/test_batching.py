"""model_server.batching: TF Serving's server-side batching, with real threads.

No test asserts on durations or sleeps for correctness: to make tasks share a batch, the
first batch's `run` blocks on an Event (the only batch thread is then busy), later tasks
pile up in the queue (awaited with BatchQueue.wait_for_enqueued), then the Event is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from model_server.batching import BatchingOptions, BatchQueue, BatchScheduler
from model_server.errors import ServingError
from model_server.protos import BatchingParameters, ConfigError, parse_text

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # generous: a wait that gives up means a bug, not a slow machine

Inputs = dict[str, np.ndarray]


class Recorder:
    """A batch `run` that records each merged batch; optionally holds the first one."""

    def __init__(
        self,
        fn: Callable[[Inputs], Inputs] | None = None,
        *,
        block_first: bool = False,
        log: list[Any] | None = None,
        name: str = "",
    ) -> None:
        self.fn = fn or (lambda inputs: {"y": inputs["x"] * 2})
        self.block_first = block_first
        self.calls: list[Inputs] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.log, self.name = log, name
        self._lock = threading.Lock()

    def __call__(self, inputs: Inputs) -> Inputs:
        with self._lock:
            self.calls.append({k: v.copy() for k, v in inputs.items()})
            first = len(self.calls) == 1
            if self.log is not None:
                self.log.append((self.name, {k: v.copy() for k, v in inputs.items()}))
        if first and self.block_first:
            self.first_started.set()
            assert self.release.wait(WAIT), "test never released the first batch"
        return self.fn(inputs)

    @property
    def batch_sizes(self) -> list[int]:
        return [len(next(iter(call.values()))) for call in self.calls]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=32) as executor:
        yield executor


@pytest.fixture
def make_scheduler() -> Iterator[Callable[..., BatchScheduler]]:
    made: list[BatchScheduler] = []

    def make(**options: Any) -> BatchScheduler:
        options.setdefault("num_batch_threads", 1)
        scheduler = BatchScheduler(BatchingOptions(**options))
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def x(*rows: Any, dtype: Any = np.int64) -> Inputs:
    return {"x": np.array(rows, dtype=dtype)}


def hold_first_batch(
    pool: ThreadPoolExecutor, queue: BatchQueue, rec: Recorder, inputs: Inputs | None = None
) -> Future[Inputs]:
    """Occupy the only batch thread with a batch (default: x=[[-1]]) held by `rec`."""
    future = pool.submit(queue.submit, x([-1]) if inputs is None else inputs)
    assert rec.first_started.wait(WAIT), f"first batch never ran; calls={rec.calls}"
    return future


def held_queue(
    pool: ThreadPoolExecutor,
    scheduler: BatchScheduler,
    fn: Callable[[Inputs], Inputs] | None = None,
) -> tuple[BatchQueue, Recorder, Future[Inputs]]:
    """Queue "m" of `scheduler`, its Recorder (running `fn`), and its first batch (x=[[-1]]):
    running on the only batch thread and held there until `rec.release` is set."""
    rec = Recorder(fn, block_first=True)
    queue = scheduler.queue("m", rec)
    return queue, rec, hold_first_batch(pool, queue, rec)


def pile_up(
    pool: ThreadPoolExecutor, queue: BatchQueue, tasks: list[Inputs]
) -> list[Future[Inputs]]:
    """Submit `tasks` one after another, each enqueued before the next (fixes their order)."""
    futures = []
    base = queue.num_enqueued_tasks
    for i, inputs in enumerate(tasks):
        futures.append(pool.submit(queue.submit, inputs))
        assert queue.wait_for_enqueued(base + i + 1, WAIT), (
            f"task {i} never enqueued; enqueued={queue.num_enqueued_tasks}, "
            f"futures={[f.done() and f.exception() for f in futures]}"
        )
    return futures


def serving_error(future: Future[Inputs]) -> ServingError:
    error = future.exception(timeout=WAIT)
    assert isinstance(error, ServingError), repr(error)
    return error


# -- options ------------------------------------------------------------------------------


def test_default_options_are_tf_core_basic_batch_scheduler_defaults() -> None:
    """TF core BasicBatchScheduler::Options defaults; thread pool name from server.cc."""
    options = BatchingOptions()
    assert options.max_batch_size == 1000
    assert options.batch_timeout_micros == 0
    assert options.max_enqueued_batches == 10
    assert options.num_batch_threads >= 1
    assert options.allowed_batch_sizes == ()
    assert options.pad_variable_length_inputs is False
    assert options.thread_pool_name == "model_server_batch_threads"
    assert options.enable_large_batch_splitting is False


def test_project_batching_parameters_file() -> None:
    """serving/batching_parameters.txt, read as server.cc reads it (ParseProtoTextFile)."""
    options = BatchingOptions.from_file(ROOT / "serving" / "batching_parameters.txt")
    assert options.max_batch_size == 32
    assert options.batch_timeout_micros == 2000
    assert options.num_batch_threads == 2
    assert options.max_enqueued_batches == 8
    assert options.allowed_batch_sizes == (1, 2, 4, 8, 16, 32)
    assert options.pad_variable_length_inputs is True
    assert options.enable_large_batch_splitting is False


def test_from_proto_keeps_defaults_for_unset_wrappers() -> None:
    """bundle_factory_util.h GetQueueOptions: only fields with has_*() override defaults."""
    params = parse_text(BatchingParameters, 'thread_pool_name { value: "pool" }', "t")
    options = BatchingOptions.from_proto(params)
    assert options == BatchingOptions(
        thread_pool_name="pool", num_batch_threads=options.num_batch_threads
    )
    assert options.max_batch_size == 1000


def test_malformed_file_reports_line_and_column(tmp_path: Path) -> None:
    """A text-format syntax error names file, line and column (like ParseProtoTextFile's error)."""
    path = tmp_path / "batching.txt"
    path.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: soon }\n")
    with pytest.raises(ConfigError) as caught:
        BatchingOptions.from_file(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.source, error.line) == (str(path), 2)
    assert error.column is not None and error.column > 1
    assert str(error).startswith(f"{path}:2:{error.column}: ")


def test_unknown_field_is_a_config_error(tmp_path: Path) -> None:
    """Unknown fields fail parsing, as in TF Serving's text-format parser."""
    path = tmp_path / "batching.txt"
    path.write_text("max_batch_size { value: 8 }\n  max_batch_sise { value: 8 }\n")
    with pytest.raises(ConfigError, match="max_batch_sise") as caught:
        BatchingOptions.from_file(path)
    assert (caught.value.line, caught.value.column) == (2, 3)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        BatchingOptions.from_file(tmp_path / "absent.txt")


def test_last_allowed_batch_size_must_equal_max_batch_size() -> None:
    """bundle_factory_util.cc WrapSessionForBatching: the message, verbatim."""
    text = "max_batch_size { value: 8 }\nallowed_batch_sizes: 2\nallowed_batch_sizes: 4\n"
    with pytest.raises(ConfigError) as caught:
        BatchingOptions.from_text(text, "b.txt")
    assert caught.value.reason == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8"
    )
    assert caught.value.line == 3  # the last allowed_batch_sizes line


def test_last_allowed_batch_size_checked_against_default_max() -> None:
    """WrapSessionForBatching compares with the default limit (1000) if max_batch_size is unset."""
    with pytest.raises(ConfigError, match="last entry was 32; expected 1000"):
        BatchingOptions.from_text("allowed_batch_sizes: 32", "b.txt")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allowed_batch_sizes": (4, 2, 8), "max_batch_size": 8}, "monotonically increasing"),
        ({"allowed_batch_sizes": (2, 2, 8), "max_batch_size": 8}, "monotonically increasing"),
        ({"allowed_batch_sizes": (0, 8), "max_batch_size": 8}, "must be positive"),
        ({"max_batch_size": 0}, "max_batch_size must be positive"),
        ({"max_enqueued_batches": 0}, "max_enqueued_batches must be positive"),
        ({"num_batch_threads": 0}, "num_batch_threads must be positive"),
        ({"batch_timeout_micros": -1}, "must not be negative"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Validation of bundle_factory_util.cc / batching_session.cc (and positive values)."""
    with pytest.raises(ValueError, match=message):
        BatchingOptions(**kwargs)


def test_large_batch_splitting_is_refused_at_parse_time() -> None:
    """enable_large_batch_splitting (batching_session.cc SplitInputTask) is not implemented."""
    text = "max_batch_size { value: 8 }\nenable_large_batch_splitting { value: true }\n"
    with pytest.raises(
        ConfigError, match="enable_large_batch_splitting: true is not supported"
    ) as c:
        BatchingOptions.from_text(text, "b.txt")
    assert c.value.line == 2
    assert not BatchingOptions.from_text(
        "enable_large_batch_splitting { value: false }", "b.txt"
    ).enable_large_batch_splitting


# -- task validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"a": np.zeros((2, 3)), "b": np.zeros((3,))},
            "Batching Run() input tensors must have equal 0th-dimension size",
        ),
        ({"a": np.array(5)}, "Batching Run() input tensors must have at least one dimension"),
        ({"a": np.zeros((0, 4))}, "must have at least one row"),
        ({}, "Batching Run() must have at least one input tensor"),
    ],
)
def test_malformed_tasks_are_invalid_argument(
    make_scheduler: Callable[..., BatchScheduler], inputs: Inputs, message: str
) -> None:
    """batching_util.h ComputeTensorBatchSize (via BatchingSession::ComputeInputSize)."""
    rec = Recorder()
    queue = make_scheduler().queue("m", rec)
    with pytest.raises(ServingError) as caught:
        queue.submit(inputs)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.message
    assert rec.calls == []


def test_task_larger_than_max_batch_size(make_scheduler: Callable[..., BatchScheduler]) -> None:
    """shared_batch_scheduler.h Queue::Schedule: oversized task, no splitting."""
    queue = make_scheduler(max_batch_size=4).queue("m", Recorder())
    with pytest.raises(ServingError) as caught:
        queue.submit(x(*[[i] for i in range(5)]))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == "Task size 5 is larger than maximum input batch size 4"
    # A task of exactly max_batch_size is fine.
    assert queue.submit(x(*[[i] for i in range(4)]))["y"].shape == (4, 1)


# -- forming batches -------------------------------------------------------------------------


def test_waiting_tasks_merge_into_one_batch(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc MergeInputTensors / SplitOutputTensors: concat on dim 0, split back."""
    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=8))
    futures = pile_up(pool, queue, [x([1, 1]), x([2, 2], [3, 3]), x([4, 4], [5, 5], [6, 6])])
    rec.release.set()
    np.testing.assert_array_equal(first.result(WAIT)["y"], [[-2]])
    results = [f.result(WAIT)["y"] for f in futures]
    np.testing.assert_array_equal(results[0], [[2, 2]])
    np.testing.assert_array_equal(results[1], [[4, 4], [6, 6]])
    np.testing.assert_array_equal(results[2], [[8, 8], [10, 10], [12, 12]])
    assert rec.batch_sizes == [1, 6], rec.calls
    np.testing.assert_array_equal(rec.calls[1]["x"], [[i, i] for i in range(1, 7)])
    stats = queue.stats
    assert (stats.batches_run, stats.tasks_run, stats.failed_batches) == (2, 4, 0)
    assert stats.sizes == {(1, 1): 1, (6, 6): 1}


def test_task_that_does_not_fit_starts_a_new_batch(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """shared_batch_scheduler.h: a task that would overflow the open batch closes it."""
    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=4))
    futures = pile_up(pool, queue, [x([1], [2], [3]), x([4], [5]), x([6], [7])])
    rec.release.set()
    for f in [first, *futures]:
        f.result(WAIT)
    assert rec.batch_sizes == [1, 3, 4], rec.calls
    np.testing.assert_array_equal(rec.calls[2]["x"], [[4], [5], [6], [7]])


def test_full_queue_is_unavailable(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """shared_batch_scheduler.h: max_enqueued_batches counts waiting batches incl. the open one."""
    queue, rec, first = held_queue(
        pool, make_scheduler(max_batch_size=2, max_enqueued_batches=2)
    )  # running: no longer counts
    futures = pile_up(pool, queue, [x([1], [2]), x([3], [4])])  # two full batches wait
    with pytest.raises(ServingError) as caught:
        queue.submit(x([5]))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.message == (
        "The batch scheduling queue to which this task was submitted is full"
    )
    rec.release.set()
    for f in [first, *futures]:
        f.result(WAIT)
    assert rec.batch_sizes == [1, 2, 2]
    # With room again, tasks are accepted.
    np.testing.assert_array_equal(queue.submit(x([5]))["y"], [[10]])


def test_full_batch_runs_without_waiting_for_the_timeout(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """shared_batch_scheduler.h IsOpenBatchSchedulable: a full batch runs before its timeout.

    With an hour's timeout, three tasks wait (proof the partial batch is held); the fourth
    fills the batch and all four run together.
    """
    rec = Recorder()
    queue = make_scheduler(max_batch_size=4, batch_timeout_micros=3_600_000_000).queue("m", rec)
    futures = pile_up(pool, queue, [x([1]), x([2]), x([3])])
    assert rec.calls == []
    futures.append(pool.submit(queue.submit, x([4])))
    assert [f.result(WAIT)["y"].tolist() for f in futures] == [[[2]], [[4]], [[6]], [[8]]]
    assert rec.batch_sizes == [4]


@pytest.mark.parametrize("timeout_micros", [0, 1000])
def test_partial_batch_runs_after_the_timeout(
    make_scheduler: Callable[..., BatchScheduler], timeout_micros: int
) -> None:
    """shared_batch_scheduler.h: a lone task runs once batch_timeout_micros have passed
    (0: as soon as a thread is free)."""
    rec = Recorder()
    queue = make_scheduler(max_batch_size=8, batch_timeout_micros=timeout_micros).queue("m", rec)
    np.testing.assert_array_equal(queue.submit(x([3], [4]))["y"], [[6], [8]])
    assert queue.stats.sizes == {(2, 2): 1}


# -- merging and padding -------------------------------------------------------------------


def test_allowed_batch_sizes_pad_with_first_row_of_last_task(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc MergeInputTensors: padding rows copy the LAST task's first row;
    batching_util.cc RoundToLowestAllowedBatchSize picks the size; padding rows are cut off."""
    queue, rec, first = held_queue(
        pool, make_scheduler(max_batch_size=8, allowed_batch_sizes=(1, 4, 8))
    )
    futures = pile_up(
        pool,
        queue,
        [
            {"x": np.array([[1, 1]]), "s": np.array([b"a"], dtype=object)},
            {"x": np.array([[7, 8], [9, 9]]), "s": np.array([b"b", b"c"], dtype=object)},
        ],
    )
    rec.fn = lambda inputs: {"y": inputs["x"] * 2, "s": inputs.get("s", inputs["x"][:, 0])}
    rec.release.set()
    first.result(WAIT)
    results = [f.result(WAIT) for f in futures]
    merged = rec.calls[1]
    np.testing.assert_array_equal(merged["x"], [[1, 1], [7, 8], [9, 9], [7, 8]])
    assert merged["s"].tolist() == [b"a", b"b", b"c", b"b"]
    np.testing.assert_array_equal(results[0]["y"], [[2, 2]])
    np.testing.assert_array_equal(results[1]["y"], [[14, 16], [18, 18]])
    assert results[1]["s"].tolist() == [b"b", b"c"]
    assert queue.stats.sizes == {(1, 1): 1, (3, 4): 1}


def test_variable_length_inputs_are_padded_with_flat_zero(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_util.cc CalculateMaxDimSizes / PadTensor: each dim >= 1 padded at the end to
    the batch's largest, with the tensor's own flat[0]; outputs keep the batch's width."""
    rec = Recorder(block_first=True, fn=lambda inputs: {"y": inputs["x"] + 0})
    queue = make_scheduler(max_batch_size=8, pad_variable_length_inputs=True).queue("m", rec)
    first = hold_first_batch(pool, queue, rec)
    futures = pile_up(pool, queue, [x([5, 6]), x([1, 2, 3, 4], [0, 0, 0, 0]), x([9], [8])])
    rec.release.set()
    first.result(WAIT)
    results = [f.result(WAIT)["y"] for f in futures]
    np.testing.assert_array_equal(
        rec.calls[1]["x"],
        [[5, 6, 5, 5], [1, 2, 3, 4], [0, 0, 0, 0], [9, 9, 9, 9], [8, 9, 9, 9]],
    )
    np.testing.assert_array_equal(results[0], [[5, 6, 5, 5]])
    np.testing.assert_array_equal(results[2], [[9, 9, 9, 9], [8, 9, 9, 9]])


def test_padding_three_dimensional_inputs(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_util.cc PadTensor pads every dimension >= 1, not only the second."""
    rec = Recorder(block_first=True, fn=lambda inputs: {"y": inputs["x"] + 0})
    queue = make_scheduler(max_batch_size=8, pad_variable_length_inputs=True).queue("m", rec)
    first = hold_first_batch(pool, queue, rec)
    a = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)
    b = np.full((1, 3, 1), 7.0, dtype=np.float32)
    futures = pile_up(pool, queue, [{"x": a}, {"x": b}])
    rec.release.set()
    first.result(WAIT)
    for f in futures:
        assert f.result(WAIT)["y"].shape == (1, 3, 3)
    merged = rec.calls[1]["x"]
    assert merged.dtype == np.float32
    np.testing.assert_array_equal(merged[0], [[1, 2, 3], [4, 5, 6], [1, 1, 1]])
    np.testing.assert_array_equal(merged[1], np.full((3, 3), 7.0))


def test_variable_length_string_inputs_are_padded(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_util.cc AddPadding covers string tensors (object arrays of bytes here)."""
    rec = Recorder(block_first=True, fn=lambda inputs: {"s": inputs["s"]})
    queue = make_scheduler(
        max_batch_size=4, pad_variable_length_inputs=True, allowed_batch_sizes=(4,)
    ).queue("m", rec)
    first = hold_first_batch(pool, queue, rec, {"s": np.array([[b"q"]], dtype=object)})
    futures = pile_up(
        pool,
        queue,
        [
            {"s": np.array([[b"a", b"b", b"c"]], dtype=object)},
            {"s": np.array([[b"z"]], dtype=object)},
        ],
    )
    rec.release.set()
    first.result(WAIT)
    assert rec.calls[1]["s"].tolist() == [
        [b"a", b"b", b"c"],
        [b"z", b"z", b"z"],
        [b"z", b"z", b"z"],
        [b"z", b"z", b"z"],
    ]
    assert futures[1].result(WAIT)["s"].tolist() == [[b"z", b"z", b"z"]]


def test_different_shapes_without_padding_fail_the_batch(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc MergeInputTensors: FAILED_PRECONDITION, TF Serving's message, for
    every task of the batch; the model never sees it."""
    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=8))
    futures = pile_up(pool, queue, [x([1, 2]), x([1, 2, 3])])
    rec.release.set()
    first.result(WAIT)
    for f in futures:
        error = serving_error(f)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.message == (
            "Tensors with name 'x' from different tasks have different shapes and padding is "
            "turned off. Set pad_variable_length_inputs to true, or ensure that all tensors with "
            "the same name have equal dimensions starting with the first dim."
        )
    assert len(rec.calls) == 1
    assert queue.stats.failed_batches == 1


def test_rank_above_six_cannot_be_padded(make_scheduler: Callable[..., BatchScheduler]) -> None:
    """batching_util.cc PadTensorOfSpecificType: ranks 1..6 only, whenever padding is on."""
    queue = make_scheduler(pad_variable_length_inputs=True).queue("m", Recorder())
    with pytest.raises(ServingError, match=r"Only tensors with rank from 1 to 6 can be padded\."):
        queue.submit({"x": np.zeros((1,) * 7)})


# -- running and splitting -----------------------------------------------------------------


def test_output_with_wrong_row_count_is_failed_precondition(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc SplitOutputTensors: outputs must have the padded batch's rows."""
    scheduler = make_scheduler(max_batch_size=8, allowed_batch_sizes=(4, 8))
    queue, rec, first = held_queue(pool, scheduler, lambda inputs: {"y": inputs["x"][:1]})
    futures = pile_up(pool, queue, [x([1]), x([2])])
    rec.release.set()
    # The held batch (1 row, padded to 4) also got 1 output row.
    for f in [first, *futures]:
        error = serving_error(f)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "0th dimension does not equal" in error.message


def test_scalar_output_is_failed_precondition(
    make_scheduler: Callable[..., BatchScheduler],
) -> None:
    """batching_session.cc SplitOutputTensors: "Batched output tensor has 0 dimensions"."""
    queue = make_scheduler().queue("m", Recorder(fn=lambda inputs: {"y": np.array(1.0)}))
    with pytest.raises(ServingError, match="0 dimensions") as caught:
        queue.submit(x([1]))
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_serving_error_from_run_reaches_every_task(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc ProcessBatch: the wrapped Run()'s status goes to all tasks."""

    def fail(inputs: Inputs) -> Inputs:
        if len(rec.calls) > 1:
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, "OOM when allocating")
        return {"y": inputs["x"]}

    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=8), fail)
    futures = pile_up(pool, queue, [x([1]), x([2], [3])])
    rec.release.set()
    first.result(WAIT)
    for f in futures:
        error = serving_error(f)
        assert (error.code, error.message) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "OOM when allocating",
        )


def test_other_exception_from_run_is_internal(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """Any other failure of the model is INTERNAL with its text, for every task of the batch."""

    def boom(inputs: Inputs) -> Inputs:
        raise RuntimeError("kernel exploded")

    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=8), boom)
    futures = pile_up(pool, queue, [x([1]), x([2])])
    rec.release.set()
    for f in [first, *futures]:
        error = serving_error(f)
        assert error.code == grpc.StatusCode.INTERNAL
        assert "kernel exploded" in error.message
        assert isinstance(error.__cause__, RuntimeError)  # the batch thread's traceback
    # The thread survives a failing batch.
    rec.fn = lambda inputs: {"y": inputs["x"]}
    np.testing.assert_array_equal(queue.submit(x([7]))["y"], [[7]])


def test_mixed_dtypes_in_one_batch_fail_like_tensor_concat(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """batching_session.cc MergeInputTensors: tensor::Concat failure is INTERNAL (numpy would
    silently upcast)."""
    queue, rec, first = held_queue(pool, make_scheduler(max_batch_size=8))
    futures = pile_up(pool, queue, [x([1], dtype=np.int32), x([2], dtype=np.float32)])
    rec.release.set()
    first.result(WAIT)
    for f in futures:
        error = serving_error(f)
        assert error.code == grpc.StatusCode.INTERNAL
        assert "Tensor concat operation failed" in error.message


# -- the shared scheduler --------------------------------------------------------------------


def test_one_scheduler_serves_queues_round_robin(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """shared_batch_scheduler.h: one thread pool for all queues, served in turn."""
    log: list[Any] = []
    scheduler = make_scheduler(max_batch_size=1, max_enqueued_batches=10)
    rec_a = Recorder(block_first=True, log=log, name="a")
    rec_b = Recorder(log=log, name="b")
    queue_a = scheduler.queue(("a", 1, "serving_default"), rec_a)
    queue_b = scheduler.queue(("b", 1, "serving_default"), rec_b)
    assert scheduler.queue(("a", 1, "serving_default"), rec_b) is queue_a
    first = hold_first_batch(pool, queue_a, rec_a)
    futures = pile_up(pool, queue_a, [x([1]), x([2]), x([3])])
    futures += pile_up(pool, queue_b, [x([10]), x([20])])
    rec_a.release.set()
    for f in [first, *futures]:
        f.result(WAIT)
    order = [(name, int(inputs["x"][0, 0])) for name, inputs in log]
    assert order == [("a", -1), ("b", 10), ("a", 1), ("b", 20), ("a", 2), ("a", 3)], order
    assert scheduler.stats.batches_run == 6
    assert queue_b.stats.batches_run == 2


def test_several_threads_run_batches_at_once(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """SharedBatchScheduler: num_batch_threads batches run concurrently."""
    barrier = threading.Barrier(3, timeout=WAIT)

    def meet(inputs: Inputs) -> Inputs:
        barrier.wait()  # only returns once three batches are running together
        return {"y": inputs["x"]}

    scheduler = make_scheduler(num_batch_threads=3, max_batch_size=1)
    queue = scheduler.queue("m", Recorder(fn=meet))
    futures = [pool.submit(queue.submit, x([i])) for i in range(3)]
    assert sorted(int(f.result(WAIT)["y"][0, 0]) for f in futures) == [0, 1, 2]


def test_removed_queue_finishes_its_tasks_and_refuses_new_ones(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """A version unloading: its queued tasks still run (TF's queue destructor drains it)."""
    scheduler = make_scheduler(max_batch_size=8)
    queue, rec, first = held_queue(pool, scheduler)
    futures = pile_up(pool, queue, [x([1]), x([2])])
    scheduler.remove_queue("m", wait=False)
    with pytest.raises(ServingError) as caught:
        queue.submit(x([3]))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    rec.release.set()
    assert [f.result(WAIT)["y"].tolist() for f in [first, *futures]] == [[[-2]], [[2]], [[4]]]
    # The key may be reused by a newly loaded version.
    fresh = scheduler.queue("m", Recorder())
    assert fresh is not queue
    np.testing.assert_array_equal(fresh.submit(x([5]))["y"], [[10]])


def test_remove_queue_waits_for_queued_tasks(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """remove_queue(wait=True) returns only once every task of the queue is answered, and
    runs the open batch at once even with a long timeout (IsOpenBatchSchedulable on close)."""
    scheduler = make_scheduler(max_batch_size=8, batch_timeout_micros=3_600_000_000)
    rec = Recorder()
    queue = scheduler.queue("m", rec)
    futures = pile_up(pool, queue, [x([1]), x([2])])
    assert rec.calls == []
    scheduler.remove_queue("m")
    assert rec.batch_sizes == [2]
    assert all(f.result(WAIT) is not None for f in futures)
    scheduler.remove_queue("m")  # unknown key: nothing to do


def test_remove_queue_blocks_while_a_batch_runs(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """remove_queue(wait=True) does not return while a batch of that queue is running."""
    scheduler = make_scheduler(max_batch_size=8)
    queue, rec, first = held_queue(pool, scheduler)
    remover = threading.Thread(target=scheduler.remove_queue, args=("m",))
    remover.start()
    remover.join(0.2)
    assert remover.is_alive()  # cannot have returned: the batch is still held
    rec.release.set()
    remover.join(WAIT)
    assert not remover.is_alive()
    assert queue.stats.batches_run == 1  # recorded once the batch's tasks were answered
    np.testing.assert_array_equal(first.result(WAIT)["y"], [[-2]])


def test_close_fails_waiting_tasks_with_unavailable(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """Shutdown: tasks no thread has taken get UNAVAILABLE; the running batch completes."""
    scheduler = make_scheduler(max_batch_size=8)
    queue, rec, first = held_queue(pool, scheduler)
    futures = pile_up(pool, queue, [x([1]), x([2])])
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    for f in futures:  # answered before the held batch is released
        assert serving_error(f).code == grpc.StatusCode.UNAVAILABLE
    assert scheduler.close(timeout=0) is False  # the held batch's thread still runs
    rec.release.set()
    np.testing.assert_array_equal(first.result(WAIT)["y"], [[-2]])
    closer.join(WAIT)
    assert not closer.is_alive()
    assert scheduler.close() is True
    with pytest.raises(ServingError) as caught:
        queue.submit(x([1]))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ServingError):
        scheduler.queue("other", Recorder())
    assert rec.batch_sizes == [1]


def test_many_concurrent_tasks_each_get_their_own_rows_once(
    make_scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor
) -> None:
    """Thread safety under load: every task answered exactly once, with its own rows."""
    scheduler = make_scheduler(
        num_batch_threads=3,
        max_batch_size=8,
        max_enqueued_batches=1000,
        allowed_batch_sizes=(2, 4, 8),
        pad_variable_length_inputs=True,
    )

    def run(inputs: Inputs) -> Inputs:
        return {"y": inputs["x"] * 2, "id": inputs["id"]}

    queues = [scheduler.queue(name, Recorder(fn=run)) for name in ("a", "b")]
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(300):
        rows, width = int(rng.integers(1, 4)), int(rng.integers(1, 6))
        inputs = {
            "x": rng.integers(1, 100, size=(rows, width)),
            "id": np.full((rows,), i),
        }
        queue = queues[i % 2]
        jobs.append((inputs, pool.submit(queue.submit, inputs)))
    for inputs, future in jobs:
        result = future.result(WAIT)
        np.testing.assert_array_equal(result["id"], inputs["id"])
        width = inputs["x"].shape[1]
        np.testing.assert_array_equal(result["y"][:, :width], inputs["x"] * 2)
        # Padding columns repeat the task's own first element (times 2).
        assert (result["y"][:, width:] == inputs["x"].flat[0] * 2).all()
    stats = scheduler.stats
    assert stats.tasks_run == 300
    assert stats.failed_batches == 0
    assert sum(stats.sizes.values()) == stats.batches_run
    assert all(padded in (2, 4, 8) and real <= padded for real, padded in stats.sizes)
    assert sum(q.stats.tasks_run for q in queues) == 300
