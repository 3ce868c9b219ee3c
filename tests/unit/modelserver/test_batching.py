"""The dynamic batcher on its own: merging, splitting, backpressure, deadlines, cancel, drain;
and the engine's Edit batch key (crop shape and EditParams) on top of it.

The backend here is a plain function that records the batches it is given (the batcher is
generic; tests of the real models batched over gRPC are in test_modelserver.py).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from modelserver.batching import ClientCancelled, DeadlinePassed, DynamicBatcher, QueueFull, ShuttingDown
from modelserver.engine import BatchingConfig, ModelEngine
from modelserver.metrics import Metrics
from modelserver.validation import EditCall
from tests.helpers import EVENT_TIMEOUT_S, wait_for
from videoedit.v1.contract import EditParams


class Backend:
    """Doubles each item; can be held at the start of a batch to let calls pile up."""

    def __init__(self):
        self.batches: list[tuple[object, list]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, key, items):
        self.batches.append((key, list(items)))
        self.started.set()
        self.release.wait(10)
        if "boom" in items:
            raise RuntimeError("backend failed")
        return [2 * i if isinstance(i, int) else i for i in items]


@pytest.fixture
def backend():
    return Backend()


def batcher(backend, **overrides) -> DynamicBatcher:
    options = dict(max_batch_size=4, max_delay_s=0.2, max_queued_calls=8, metrics=Metrics()) | overrides
    return DynamicBatcher("test", backend, **options)


def busy_batcher(backend, first_item=1, **overrides):
    """A batcher whose worker is held inside the batch of `first_item`: later calls queue up."""
    backend.release.clear()
    queue = batcher(backend, max_delay_s=0, **overrides)
    first = queue.submit("k", [first_item])
    assert backend.started.wait(EVENT_TIMEOUT_S)
    return queue, first


def in_threads(fns):
    results = [None] * len(fns)

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as err:  # the test inspects it
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return results


def test_concurrent_compatible_calls_run_as_one_batch_with_their_own_results(backend):
    queue = batcher(backend)
    results = in_threads([lambda i=i: queue("k", [i]) for i in range(4)])
    assert sorted(results) == [[0], [2], [4], [6]]
    assert len(backend.batches) == 1 and sorted(backend.batches[0][1]) == [0, 1, 2, 3]
    queue.close()


def test_calls_with_different_keys_are_never_merged(backend):
    queue = batcher(backend)
    results = in_threads([lambda: queue("a", [1]), lambda: queue("b", [2]), lambda: queue("a", [3])])
    assert results == [[2], [4], [6]]
    assert sorted(len(items) for _, items in backend.batches) == [1, 2]
    queue.close()


def test_a_call_bigger_than_a_batch_spans_several_in_order(backend):
    queue = batcher(backend, max_delay_s=0)
    assert queue("k", list(range(10))) == [2 * i for i in range(10)]
    assert [len(items) for _, items in backend.batches] == [4, 4, 2]
    queue.close()


def test_a_full_queue_refuses_at_once(backend):
    queue, running = busy_batcher(backend, first_item=0, max_queued_calls=2)
    waiting = [queue.submit("k", [1]), queue.submit("k", [2])]
    with pytest.raises(QueueFull, match="full"):
        queue.submit("k", [3])
    backend.release.set()
    assert queue.wait(running) == [0] and [queue.wait(c) for c in waiting] == [[2], [4]]
    queue.close()


def test_a_cancelled_call_never_reaches_the_backend(backend):
    queue, first = busy_batcher(backend)
    cancelled = queue.submit("k", [2])
    cancelled.cancel()
    kept = queue.submit("k", [3])
    backend.release.set()
    with pytest.raises(ClientCancelled):
        queue.wait(cancelled)
    assert queue.wait(first) == [2] and queue.wait(kept) == [6]
    assert [items for _, items in backend.batches] == [[1], [3]]
    queue.close()


def test_a_call_past_its_deadline_is_dropped_and_does_not_hold_up_others(backend):
    queue, first = busy_batcher(backend)
    late = queue.submit("k", [2], deadline=time.monotonic() + 0.1)
    with pytest.raises(DeadlinePassed, match="deadline"):
        queue.wait(late)
    backend.release.set()
    assert queue.wait(first) == [2] and queue("k", [5]) == [10]
    assert [2] not in [items for _, items in backend.batches]
    queue.close()


def test_a_failing_batch_fails_its_calls_only(backend):
    queue = batcher(backend, max_delay_s=0)
    with pytest.raises(RuntimeError, match="backend failed"):
        queue("k", ["boom"])
    assert queue("k", [4]) == [8]
    queue.close()


def test_close_finishes_queued_calls_and_refuses_new_ones(backend):
    backend.release.clear()
    queue = batcher(backend, max_delay_s=0)
    calls = [queue.submit("k", [i]) for i in range(3)]
    assert backend.started.wait(EVENT_TIMEOUT_S)
    closer = threading.Thread(target=queue.close, args=(10,))
    closer.start()
    wait_for(lambda: queue.closing, "close() to begin")
    with pytest.raises(ShuttingDown):
        queue.submit("k", [9])
    backend.release.set()
    closer.join(10)
    assert [queue.wait(c) for c in calls] == [[0], [2], [4]]


def test_metrics_count_batches_items_and_queue(backend):
    metrics = Metrics()
    queue = batcher(backend, metrics=metrics, max_delay_s=0)
    queue("k", [1, 2, 3])
    value = metrics.registry.get_sample_value
    assert value("videoedit_modelserver_items_total", {"model": "test"}) == 3
    assert value("videoedit_modelserver_batch_size_sum", {"model": "test"}) == 3
    assert value("videoedit_modelserver_batch_size_count", {"model": "test"}) == 1
    assert value("videoedit_modelserver_queued_calls", {"model": "test"}) == 0
    queue.close()


class Editor:
    """Records the EditParams and seeds of each batch; an image comes back as its seed's colour."""

    size_multiple = 8

    def __init__(self):
        self.batches: list[tuple[EditParams, list[int]]] = []
        self.instructions: list[list[str]] = []  # per batch, per crop

    def edit(self, images, instructions, params, *, seeds, anchors=None):
        self.batches.append((params, list(seeds)))
        self.instructions.append(list(instructions))
        return [np.full_like(image, seed) for image, seed in zip(images, seeds, strict=True)]


def edit_calls(
    engine: ModelEngine, calls: list[tuple[int, EditParams, int]], instructions: tuple[str, ...] = ("x",)
) -> list[list[int]]:
    """Each (crop side, params, seed) sent as its own Edit call at once (with the instructions in
    turn); the seed each call got back."""

    def send(side: int, params: EditParams, seed: int, instruction: str) -> list[int]:
        crop = np.zeros((side, side, 3), np.uint8)
        return [int(image[0, 0, 0]) for image in engine.edit(EditCall([crop], instruction, params, [seed]))]

    calls_with = [(*c, instructions[i % len(instructions)]) for i, c in enumerate(calls)]
    return in_threads([lambda c=c: send(*c) for c in calls_with])


def edit_engine(editor: Editor, **batching) -> ModelEngine:
    return ModelEngine(None, editor, BatchingConfig(**batching), Metrics())  # type: ignore[arg-type]


def test_edit_calls_with_equal_edit_params_run_as_one_batch():
    editor = Editor()
    # A batch of two runs as soon as two crops of one key wait, however long the delay allowed.
    engine = edit_engine(editor, edit_max_batch_size=2, max_delay_ms=EVENT_TIMEOUT_S * 1000)
    try:  # equal values in other objects
        assert edit_calls(engine, [(64, EditParams(1.5, 7.5, 2), 1), (64, EditParams(1.5, 7.5, 2), 2)]) == [[1], [2]]
    finally:
        engine.close()
    [(params, seeds)] = editor.batches
    assert params == EditParams(1.5, 7.5, 2) and sorted(seeds) == [1, 2]


def test_edit_calls_with_other_instructions_run_as_one_batch_each_crop_with_its_own():
    """How the objects of one job (each with its own instruction) are edited together."""
    editor = Editor()
    engine = edit_engine(editor, edit_max_batch_size=2, max_delay_ms=EVENT_TIMEOUT_S * 1000)
    fast = EditParams(1.5, 7.5, 2)
    try:
        assert edit_calls(engine, [(64, fast, 1), (64, fast, 2)], ("make it blue", "make it pink")) == [[1], [2]]
    finally:
        engine.close()
    [(_, seeds)] = editor.batches
    [instructions] = editor.instructions
    assert dict(zip(seeds, instructions, strict=True)) == {1: "make it blue", 2: "make it pink"}


def test_edit_calls_with_other_edit_params_or_crop_sizes_never_merge():
    editor = Editor()
    engine = edit_engine(editor, max_delay_ms=200)
    fast, other = EditParams(1.5, 7.5, 2), EditParams(1.5, 7.5, 2, "dpmpp_2m")
    try:
        assert edit_calls(engine, [(64, fast, 3), (64, other, 4), (32, fast, 5)]) == [[3], [4], [5]]
    finally:
        engine.close()
    assert sorted(editor.batches, key=lambda b: b[1]) == [(fast, [3]), (other, [4]), (fast, [5])]
