"""Dynamic batching: a bounded queue and one worker thread per model.

What Triton's dynamic batcher and Ray Serve's @serve.batch do, for our two models: RPC threads
`submit` calls (each a list of items plus a compatibility key) and block on the result; the
worker takes the oldest call and, for up to `max_delay_s` after it arrived, gathers the items of
calls with the same key until it has `max_batch_size` of them, runs them as one batch and hands
each call its slice of the results. A call bigger than one batch spans several.

A call whose client went away or whose deadline passed is dropped before its items are batched,
so it never holds up the calls behind it. A full queue refuses at once (QueueFull ->
RESOURCE_EXHAUSTED) instead of letting latency grow without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The model's queue holds `max_queued_calls` calls already."""


class ShuttingDown(Exception):
    """The server is draining; another replica (or a retry) should take the call."""


class CallDropped(Exception):
    """The call left before its results were ready."""


class DeadlinePassed(CallDropped):
    """The call's deadline passed before its results were ready (-> DEADLINE_EXCEEDED)."""


class ClientCancelled(CallDropped):
    """The client cancelled the call or went away (-> CANCELLED)."""


@dataclass(eq=False)
class Call:
    """One RPC's items waiting in a DynamicBatcher's queue: the items may be spread over several
    batches; the call is done when all their results are in, or it failed or was dropped."""

    key: Hashable
    items: Sequence[Any]
    deadline: float | None  # time.monotonic() seconds; None = no deadline
    enqueued: float = field(default_factory=time.monotonic)
    taken: int = 0  # items handed to batches so far
    finished: int = 0  # items whose results are in
    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()

    def cancel(self) -> None:
        """The client went away: drop what has not run yet."""
        self.fail(ClientCancelled("cancelled by the client"))

    def dropped(self, now: float) -> bool:
        if self.deadline is not None and now >= self.deadline and not self.done.is_set():
            self.fail(DeadlinePassed(f"deadline exceeded {now - self.enqueued:.2f} s after the call arrived"))
        return self.done.is_set()


class DynamicBatcher:
    """One model's queue. `run_batch(key, items) -> results` runs on the worker thread only."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[Hashable, list[Any]], list[Any]],
        *,
        max_batch_size: int,
        max_delay_s: float,
        max_queued_calls: int,
        metrics: Metrics,
        item_weight: Callable[[Any], int] = lambda _: 1,
    ):
        if max_batch_size < 1 or max_queued_calls < 1 or max_delay_s < 0:
            raise ValueError(f"{name}: max_batch_size and max_queued_calls must be >= 1 and max_delay_s >= 0")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queued_calls = max_queued_calls
        self._run_batch = run_batch
        self._metrics = metrics
        self._weight = item_weight  # what "batch size" and items/s count: crops, or frames of a chunk
        self._queue: deque[Call] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    # --- caller side (RPC threads) ---

    def submit(self, key: Hashable, items: Sequence[Any], deadline: float | None = None) -> Call:
        call = Call(key, items, deadline)
        with self._cond:
            if self._stopping:
                raise ShuttingDown(f"the {self.name} queue is closed: the server is shutting down")
            if len(self._queue) >= self.max_queued_calls:
                raise QueueFull(
                    f"the {self.name} queue is full ({self.max_queued_calls} calls waiting); "
                    "retry later or add model-server replicas"
                )
            self._queue.append(call)
            self._metrics.queued_calls.labels(self.name).set(len(self._queue))
            self._cond.notify_all()
        return call

    def wait(self, call: Call) -> list[Any]:
        """Block until the call is done; raises its error (CallDropped, or the backend's)."""
        while not call.done.wait(0.05 if call.deadline is not None else None):
            if call.dropped(time.monotonic()):
                break
        if call.error is not None:
            raise call.error
        return call.results

    def __call__(
        self,
        key: Hashable,
        items: Sequence[Any],
        deadline: float | None = None,
        on_cancel: Callable[[Callable[[], None]], Any] | None = None,
    ) -> list[Any]:
        """Submit and wait. `on_cancel(fn)` registers fn to run when the client goes away
        (grpc's `context.add_callback`), so a cancelled call leaves the queue at once."""
        call = self.submit(key, items, deadline)
        if on_cancel is not None:
            on_cancel(call.cancel)
        return self.wait(call)

    @property
    def closing(self) -> bool:
        """close() was called: new calls are refused."""
        return self._stopping

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new calls, finish the queued and running ones; True if drained in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- worker side ---

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[tuple[Call, int]] | None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._queue and self._queue[0].dropped(now):
                    self._queue.popleft()
                if not self._queue:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                first = self._queue[0]
                # Wait for company only while the first call's delay budget lasts; when
                # draining, run what is there at once.
                remaining = first.enqueued + self.max_delay_s - now
                if remaining > 0 and not self._stopping and self._waiting_items(first.key) < self.max_batch_size:
                    self._cond.wait(remaining)
                    continue
                return self._take(first.key, now)

    def _waiting_items(self, key: Hashable) -> int:
        return sum(len(c.items) - c.taken for c in self._queue if c.key == key and not c.done.is_set())

    def _take(self, key: Hashable, now: float) -> list[tuple[Call, int]]:
        """Up to max_batch_size (call, item index) pairs of `key`, oldest call first."""
        batch: list[tuple[Call, int]] = []
        for call in list(self._queue):
            if len(batch) == self.max_batch_size:
                break
            if call.key != key or call.dropped(now):
                continue
            if call.taken == 0:
                self._metrics.queue_wait.labels(self.name).observe(now - call.enqueued)
            count = min(len(call.items) - call.taken, self.max_batch_size - len(batch))
            batch += [(call, call.taken + i) for i in range(count)]
            call.taken += count
        # Keep only calls with items still to batch (dropped ones are done already).
        self._queue = deque(c for c in self._queue if c.taken < len(c.items) and not c.done.is_set())
        self._metrics.queued_calls.labels(self.name).set(len(self._queue))
        return batch

    def _run(self, batch: list[tuple[Call, int]]) -> None:
        items = [call.items[i] for call, i in batch]
        started = time.monotonic()
        try:
            weight = sum(self._weight(item) for item in items)
            results = self._run_batch(batch[0][0].key, items)
            if len(results) != len(items):
                raise RuntimeError(f"{self.name}: backend returned {len(results)} results for {len(items)} items")
        except Exception as err:  # the batch's calls fail; the worker and the other calls go on
            log.exception("%s batch of %d items failed", self.name, len(items))
            for call in {c for c, _ in batch}:
                call.fail(err)
            return
        finally:
            elapsed = time.monotonic() - started
            self._metrics.compute_seconds.labels(self.name).observe(elapsed)
        self._metrics.batch_size.labels(self.name).observe(weight)
        self._metrics.items.labels(self.name).inc(weight)
        for (call, i), result in zip(batch, results, strict=True):
            call.results[i] = result
            call.finished += 1
            if call.finished == len(call.items) and not call.done.is_set():
                call.done.set()
