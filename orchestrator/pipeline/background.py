"""Model calls that run while the stage goes on (the next chunk decodes, the last batch pastes).

Each call runs on a daemon thread of its own and hands back a Future. A stage that stops early
(cancelled, the server shutting down, an error) simply drops its futures: the calls in flight end
on their own, their results unused, and the job does not wait for them. A server shutting down
does (wait_for_calls), once it has closed the model connections so that they end at once: a thread
still inside gRPC when the interpreter exits aborts the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


def in_background(name: str, call: Callable[..., T], *args) -> Future[T]:
    future: Future[T] = Future()

    def run() -> None:
        try:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(call(*args))
            except BaseException as err:  # handed to whoever waits on the future
                future.set_exception(err)
        finally:
            with _running_lock:
                _running.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _running_lock:
        _running.add(thread)
    thread.start()
    return future


def wait_for_calls(timeout_s: float) -> int:
    """Wait up to `timeout_s` in all for the calls still running; returns how many still are."""
    deadline = time.monotonic() + timeout_s
    with _running_lock:
        running = list(_running)
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in running)
