"""Model calls that run while their stage goes on (the next chunk decodes, the last batch is
spooled): each Models object runs them on threads of its own and knows which are in flight.

Each call runs on a daemon thread of its own (a call may wait for an earlier one of its tracking
session, so a bounded pool could wait on itself) and hands back a Future. A stage that stops
early (cancelled, the server shutting down, an error) simply drops its futures: the calls in
flight end on their own, their results unused, and the job does not wait for them. Closing the
models does wait (`ModelCalls.wait`), once the connections are closed so that the calls end at
once: a thread still inside gRPC when the interpreter exits aborts the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class ModelCalls:
    """The model calls of one Models object that are still running."""

    def __init__(self) -> None:
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, name: str, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run `call(*args)` (which calls the models) on a thread named `name`."""
        future: Future[T] = Future()
        thread = threading.Thread(target=self._run, args=(future, call, args), name=name, daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()
        return future

    def wait(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` in all for the calls still running; returns how many still are."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(thread.is_alive() for thread in running)

    def _run(self, future: Future[T], call: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call(*args))
                except BaseException as err:  # handed to whoever waits on the future
                    future.set_exception(err)
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())
