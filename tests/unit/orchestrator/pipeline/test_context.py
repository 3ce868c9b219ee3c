"""The hand-overs between stages running on threads of their own: TrackedFrames."""

from __future__ import annotations

import threading

import pytest

from orchestrator.pipeline.context import Stopped, TrackedFrame, TrackedFrames


class Waited(Exception):
    """Raised by a hand-over's `waiting` callback: it had to wait."""


def waited() -> None:
    raise Waited()


def test_tracked_frames_come_out_in_order_and_tracking_waits_when_editing_is_a_capacity_behind():
    tracked = TrackedFrames(capacity=3)
    for index in range(3):
        tracked.put(TrackedFrame(index, None, None), waiting=waited)  # room: no waiting
    with pytest.raises(Waited):  # full: it waits (checking whether the job ended meanwhile)
        tracked.put(TrackedFrame(3, None, None), waiting=waited)

    def tracking() -> None:
        for index in range(3, 10):
            tracked.put(TrackedFrame(index, None, None))
        tracked.finish()

    thread = threading.Thread(target=tracking)
    thread.start()
    assert [frame.index for frame in tracked] == list(range(10))
    thread.join(5)


@pytest.mark.parametrize("side", ["tracking", "editing"])
def test_stopping_tracked_frames_stops_the_side_that_waits(side):
    tracked = TrackedFrames(capacity=1)
    tracked.put(TrackedFrame(0, None, None))
    raised = threading.Event()

    def wait() -> None:
        try:
            if side == "tracking":
                tracked.put(TrackedFrame(1, None, None))  # full: waits for editing
            else:
                for _ in tracked:  # takes frame 0, then waits for tracking
                    pass
        except Stopped:
            raised.set()

    thread = threading.Thread(target=wait)
    thread.start()
    tracked.stop()
    thread.join(5)
    assert raised.is_set()
