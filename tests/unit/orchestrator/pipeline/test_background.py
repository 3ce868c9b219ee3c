"""Model calls in flight: a shutdown can wait for the ones a stopped job left running."""

from __future__ import annotations

import threading

from orchestrator.pipeline.background import in_background, wait_for_calls


def test_wait_for_calls_waits_for_the_calls_still_running_and_says_how_many_are_left():
    answer = threading.Event()
    call = in_background("edit", lambda: answer.wait(5) and "edited")
    assert wait_for_calls(0.05) >= 1 and not call.done()  # still waiting for its answer
    answer.set()
    wait_for_calls(5)
    assert call.done() and call.result() == "edited"
