"""Model calls that run while the stage goes on (the next chunk decodes, the last batch pastes).

Each call runs on a daemon thread of its own and hands back a Future. A stage that stops early
(cancelled, the server shutting down, an error) simply drops its futures: the calls in flight end
on their own, their results unused, and neither the job nor the process waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def in_background(name: str, call: Callable[..., T], *args) -> Future[T]:
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call(*args))
        except BaseException as err:  # handed to whoever waits on the future
            future.set_exception(err)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
