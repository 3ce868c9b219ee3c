"""Model calls in flight: closing the models waits for the ones a stopped job left running."""

from __future__ import annotations

import threading

import pytest

from orchestrator.models.calls import ModelCalls


def test_wait_waits_for_the_calls_still_running_and_says_how_many_are_left():
    calls, answer = ModelCalls(), threading.Event()
    call = calls.submit("edit", lambda: answer.wait(5) and "edited")
    assert calls.wait(0.05) == 1 and not call.done()  # still waiting for its answer
    answer.set()
    assert calls.wait(5) == 0
    assert call.done() and call.result() == "edited"


def test_a_failed_call_hands_its_error_to_the_future_and_is_no_longer_running():
    calls = ModelCalls()
    call = calls.submit("segment", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        call.result(timeout=5)
    assert calls.wait(5) == 0
