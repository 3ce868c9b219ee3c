"""The pieces stages running at the same time share: the job's StopSignal, the hand-overs
(TrackedFrames, FrameWatermark, KeyframePlan) and the stages running behind (StagesBehind)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import pytest

from orchestrator.errors import JobCancelled, JobInterrupted, JobLost, ModelServerError
from orchestrator.pipeline.concurrency import (
    PROGRESS_TICK_S,
    FrameWatermark,
    KeyframePlan,
    StagesBehind,
    Stopped,
    StopReason,
    StopSignal,
    Tally,
    TrackedFrame,
    TrackedFrames,
)


def on_thread(wait) -> tuple[threading.Thread, list[BaseException]]:
    """Run `wait` on a thread of its own; what it raised lands in the list."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            wait()
        except BaseException as err:
            raised.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def stopped_while_waiting(wait, reason: StopReason = StopReason.CANCELLED) -> BaseException:
    """What `wait` raises when its job is stopped while it waits (it must wait until then)."""
    stop = StopSignal()
    thread, raised = on_thread(lambda: wait(stop))
    thread.join(2 * PROGRESS_TICK_S)
    assert thread.is_alive() and not raised, "it did not wait"
    stop.stop(reason)
    thread.join(5)
    assert not thread.is_alive() and len(raised) == 1
    return raised[0]


@pytest.mark.parametrize(
    "reasons, error",
    [
        ([StopReason.CANCELLED], JobCancelled),
        ([StopReason.SHUTDOWN], JobInterrupted),
        ([StopReason.FAILED], Stopped),
        ([StopReason.CANCELLED, StopReason.LEASE_LOST], JobLost),  # a lost job touches nothing, whatever else
        ([StopReason.FAILED, StopReason.SHUTDOWN], JobInterrupted),
    ],
)
def test_the_stop_signal_raises_what_its_strongest_reason_means(reasons, error):
    stop = StopSignal()
    stop.raise_if_stopped()  # not stopped: nothing
    for reason in reasons:
        stop.stop(reason)
    with pytest.raises(error):
        stop.raise_if_stopped()


def test_a_finishing_job_ignores_a_shutdown_but_not_a_cancel():
    stop = StopSignal()
    stop.stop(StopReason.SHUTDOWN)
    stop.raise_if_stopped(finishing=True)
    stop.stop(StopReason.CANCELLED)
    with pytest.raises(JobCancelled):
        stop.raise_if_stopped(finishing=True)


def test_the_first_real_failure_is_the_jobs_and_the_stops_it_causes_are_not():
    stop = StopSignal()
    stop.fail(Stopped())  # a stage that stopped because another did: not a cause
    assert stop.reason() is None
    first = ModelServerError("the model server went away")
    stop.fail(first)
    stop.fail(ValueError("later"))
    assert stop.failure is first and stop.reason() is StopReason.FAILED


def test_a_wait_on_a_future_ends_at_once_when_the_job_stops_and_ticks_meanwhile():
    ticks: list[int] = []
    never: Future[int] = Future()
    error = stopped_while_waiting(lambda stop: stop.result(never, tick=lambda: ticks.append(1)))
    assert isinstance(error, JobCancelled) and ticks  # it reported progress while it waited
    done: Future[int] = Future()
    done.set_result(7)
    assert StopSignal().result(done) == 7


def test_tracked_frames_come_out_in_order_and_tracking_waits_when_editing_is_a_capacity_behind():
    tracked = TrackedFrames(capacity=3, stop=StopSignal())
    for index in range(3):
        tracked.put(TrackedFrame(index, None, None))  # room: no waiting
    thread, raised = on_thread(
        lambda: [tracked.put(TrackedFrame(i, None, None)) for i in range(3, 10)] and tracked.finish()
    )
    thread.join(0.2)
    assert thread.is_alive()  # full: tracking waits for editing
    assert [frame.index for frame in tracked] == list(range(10))
    thread.join(5)
    assert not raised


@pytest.mark.parametrize("side", ["tracking", "editing"])
def test_stopping_the_job_stops_the_side_of_tracked_frames_that_waits(side):
    def wait(stop: StopSignal) -> None:
        tracked = TrackedFrames(capacity=1, stop=stop)
        tracked.put(TrackedFrame(0, None, None))
        if side == "tracking":
            tracked.put(TrackedFrame(1, None, None))  # full: waits for editing
        else:
            for _ in tracked:  # takes frame 0, then waits for tracking
                pass

    assert isinstance(stopped_while_waiting(wait, StopReason.FAILED), Stopped)


def test_a_watermark_and_a_keyframe_plan_wait_until_far_enough_or_stopped():
    stop = StopSignal()
    plan = KeyframePlan(4, stop)
    plan.mark(2)
    plan.decided.advance(3)
    assert [plan[i] for i in range(3)] == [False, False, True]
    thread, raised = on_thread(plan.count)  # waits for the whole plan
    plan.decided.finish()
    thread.join(5)
    assert not raised and plan.count() == 1
    assert isinstance(stopped_while_waiting(lambda s: FrameWatermark(s).wait(0), StopReason.SHUTDOWN), JobInterrupted)


@dataclass(frozen=True)
class Context:
    """What StagesBehind needs of a JobContext."""

    progress: object
    stop: StopSignal = field(default_factory=StopSignal)
    log: logging.Logger = logging.getLogger("tests")


def test_a_stage_behind_counts_its_progress_and_hands_back_its_result():
    reported: list[int] = []

    class Progress:
        def advance(self, done: int, message: str | None = None) -> None:
            reported.append(done)

    def stage(ctx: Context, frames: int) -> str:
        assert isinstance(ctx.progress, Tally)
        ctx.progress.advance(frames)
        return "saved"

    ctx = Context(Progress())
    with StagesBehind(ctx) as behind:
        saving = behind.start("saving", stage, 12)
        behind.finish(saving)
    assert saving.result() == "saved" and saving.tally.done == 12 and reported[-1] == 12


def test_a_stage_behind_that_fails_stops_the_job_and_one_that_waits_stops_with_it():
    ctx = Context(progress=None)
    gate = FrameWatermark(ctx.stop)

    def failing(_: Context) -> None:
        raise ModelServerError("the model server went away")

    with pytest.raises(Stopped):
        with StagesBehind(ctx) as behind:
            waiting = behind.start("saving", lambda _ctx: gate.wait(5))
            behind.start("editing", failing)
            gate.wait(5)  # the current stage waits too: stopped by the failure
    assert isinstance(ctx.stop.failure, ModelServerError)
    with pytest.raises(Stopped):
        waiting.result()
    assert not [t.name for t in threading.enumerate() if t.name in ("saving", "editing")]
