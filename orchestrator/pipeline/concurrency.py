"""Everything in a video job that runs at the same time, in one place.

A job's stages run on threads of their own, each following the one before it as that one's
output becomes final (driver.py says which follows which). What they share:

- `StopSignal`: the one way a job is told to stop, carrying why (cancelled, server shutdown,
  lease lost, another stage failed). Every wait below ends as soon as it is raised: no stage
  polls, and a cancel lands while a stage waits on another or on the model server.
- `FrameWatermark`: how far a stage's output is final; a stage behind waits on it frame by frame.
- `TrackedFrames`: the bounded hand-over of frames from propagating to editing.
- `KeyframePlan`: which frames the model edits, decided front to back while editing follows.
- `SharedRecord`: a record two stages rewrite (the checkpoint manifest), one writer at a time.
- `StagesBehind` / `BehindStage`: stages running behind the current one, each on a thread of its
  own with its progress counted (`Tally`) until its own stage comes; a small handle instead of
  a thread and a future.

Model calls that run while a stage goes on (the next chunk decodes, the last batch is spooled)
belong to the Models object (`models.calls`): they outlive a stopped job, and the server's
shutdown waits for them there.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, wait
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ..errors import JobCancelled, JobInterrupted, JobLost
from ..request import JobStatus
from ..vision.crop import Box

T = TypeVar("T")

# How often a stage waiting for work behind it reports that work's progress.
PROGRESS_TICK_S = 0.25
# How long a job that ends early waits for a stage running behind to stop (it stops at its next wait).
BEHIND_STOP_S = 60.0
# The end of a watermark: every frame is final.
ALL_FRAMES = 2**62


class StopReason(enum.Enum):
    """Why a job stops early, in the order they win when several come at once: a job lost to
    another orchestrator touches nothing, whatever else was asked of it."""

    LEASE_LOST = "lease lost"  # another orchestrator took the job over: stop, leave its files
    SHUTDOWN = "shutdown"  # the server shuts down: stop, queued again for the next orchestrator
    CANCELLED = "cancelled"  # CancelEdit
    FAILED = "failed"  # a stage failed: the others stop, the job fails with that stage's error


class Stopped(Exception):
    """Raised in a stage when another stage of its job failed (the driver raises that error)."""


_RAISES: dict[StopReason, type[Exception]] = {
    StopReason.LEASE_LOST: JobLost,
    StopReason.SHUTDOWN: JobInterrupted,
    StopReason.CANCELLED: JobCancelled,
    StopReason.FAILED: Stopped,
}


class StopSignal:
    """Whether, and why, one job must stop. Anyone may stop it (the job manager: cancel, shutdown,
    lease lost; a stage: its failure); every stage raises at its next progress report or at once
    in the wait it is in (`wait`, `result`), with the exception that says why."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: set[StopReason] = set()
        self._stopped: Future[None] = Future()  # done at the first stop: future waits wait on it too
        self._conditions: list[threading.Condition] = []  # what the hand-overs wait on: woken at a stop
        self.failure: BaseException | None = None  # the first stage failure (StopReason.FAILED)

    def stop(self, reason: StopReason) -> None:
        with self._lock:
            self._reasons.add(reason)
            conditions = list(self._conditions)
        try:
            self._stopped.set_result(None)
        except InvalidStateError:  # stopped before
            pass
        for condition in conditions:
            with condition:
                condition.notify_all()

    def fail(self, error: BaseException) -> None:
        """A stage failed with `error`: the job stops, and fails with the first such error. A stage
        that stopped because the job did (Stopped, JobCancelled) is not a failure of its own."""
        if isinstance(error, (Stopped, JobCancelled)):
            return
        with self._lock:
            if self.failure is None:
                self.failure = error
        self.stop(StopReason.FAILED)

    def reason(self, finishing: bool = False) -> StopReason | None:
        """The reason that wins (None: not stopped). `finishing`: the job's outputs are written and
        only its final status is left; a shutdown no longer stops it, a cancel still does."""
        with self._lock:
            reasons = self._reasons - {StopReason.SHUTDOWN} if finishing else set(self._reasons)
        return next((r for r in StopReason if r in reasons), None)

    def stopped_for(self, reason: StopReason) -> bool:
        with self._lock:
            return reason in self._reasons

    def raise_if_stopped(self, finishing: bool = False) -> None:
        """Raise JobLost, JobInterrupted, JobCancelled or Stopped when the job was told to stop."""
        reason = self.reason(finishing)
        if reason is not None:
            raise _RAISES[reason]()

    def wakes(self, condition: threading.Condition) -> None:
        """Notify `condition` when the job stops, so that `wait` on it ends."""
        with self._lock:
            self._conditions.append(condition)
        if self._stopped.done():
            with condition:
                condition.notify_all()

    def wait(self, condition: threading.Condition, ready: Callable[[], bool]) -> None:
        """With `condition` held (and registered by `wakes`): until `ready()`, raising as soon as
        the job stops."""
        while True:
            self.raise_if_stopped()
            if ready():
                return
            condition.wait()

    def result(self, future: Future[T], tick: Callable[[], None] | None = None) -> T:
        """`future`'s result, raising as soon as the job stops first. `tick` is called every
        PROGRESS_TICK_S meanwhile (to report the progress of what the wait is for)."""
        while True:
            done, _ = wait(
                (future, self._stopped), timeout=PROGRESS_TICK_S if tick else None, return_when=FIRST_COMPLETED
            )
            if future in done:
                return future.result()
            self.raise_if_stopped()
            if tick is not None:
                tick()


class Tally:
    """The Progress of work that runs behind the current stage: it only counts (the driver reports
    the count when that work's own stage comes), and stops the work when the job stops."""

    def __init__(self, stop: StopSignal) -> None:
        self.done = 0
        self._stop = stop

    def stage(self, stage: JobStatus, message: str, total_frames: int | None = None) -> None:
        self._stop.raise_if_stopped()

    def advance(self, done: int, message: str | None = None) -> None:
        self._stop.raise_if_stopped()
        self.done = max(self.done, done)

    def complete(self, done: int, message: str | None = None) -> None:
        self._stop.raise_if_stopped()
        self.done = done


class FrameWatermark:
    """How far a stage's output is final: frames [0, value) will not change any more. A stage
    running behind another waits on it frame by frame."""

    def __init__(self, stop: StopSignal) -> None:
        self._value = 0
        self._stop = stop
        self._changed = threading.Condition()
        stop.wakes(self._changed)

    def advance(self, value: int) -> None:
        """Frames [0, value) are final. Raises once the job has stopped: nobody waits any more, so
        the stage that advances stops too."""
        with self._changed:
            self._stop.raise_if_stopped()
            if value > self._value:
                self._value = value
                self._changed.notify_all()

    def finish(self) -> None:
        """Every frame is final."""
        self.advance(ALL_FRAMES)

    def wait(self, index: int) -> None:
        """Until frame `index` is final."""
        with self._changed:
            self._stop.wait(self._changed, lambda: self._value > index)


@dataclass(frozen=True)
class TrackedFrame:
    """A frame whose mask is final, as propagating hands it to editing."""

    index: int
    box: Box | None  # its mask's bounding box (None: no object)
    pixels: np.ndarray | None  # RGB uint8, when it has an object (editing needs no others)


class TrackedFrames:
    """Frames handed from propagating to editing, which runs behind it, in order as their masks
    become final: the model server edits while it tracks, and the frames are cropped from the
    decode tracking made (no second decode). Holds at most `capacity` frames: propagating waits
    for editing when it is that far ahead, so memory stays flat."""

    def __init__(self, capacity: int, stop: StopSignal) -> None:
        self._queue: deque[TrackedFrame] = deque()
        self._capacity = capacity
        self._finished = False
        self._stop = stop
        self._changed = threading.Condition()
        stop.wakes(self._changed)

    def put(self, frame: TrackedFrame) -> None:
        """Hand `frame` over, first waiting for room."""
        with self._changed:
            self._stop.wait(self._changed, lambda: len(self._queue) < self._capacity)
            self._queue.append(frame)
            self._changed.notify_all()

    def finish(self) -> None:
        """Every frame was put."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[TrackedFrame]:
        while True:
            with self._changed:
                self._stop.wait(self._changed, lambda: bool(self._queue) or self._finished)
                if not self._queue:
                    return
                frame = self._queue.popleft()
                self._changed.notify_all()
            yield frame


class KeyframePlan:
    """Which frames the model edits (the keyframes), decided front to back. Adaptive keyframes are
    found by a pass over the video that runs beside editing and carrying: reading frame i's entry
    waits until the plan has got that far."""

    def __init__(self, count: int, stop: StopSignal) -> None:
        self._keys = [False] * count
        self.decided = FrameWatermark(stop)  # frames [0, value) are decided

    def mark(self, index: int) -> None:
        """Frame `index` is a keyframe (before `decided` passes it)."""
        self._keys[index] = True

    def __getitem__(self, index: int) -> bool:
        self.decided.wait(index)
        return self._keys[index]

    def count(self) -> int:
        """Keyframes in all (waits for the whole plan)."""
        self.decided.wait(len(self._keys) - 1)
        return sum(self._keys)


class SharedRecord:
    """A record that stages running at the same time both rewrite (tracking and editing, the job's
    checkpoint manifest): one writer at a time, `with record.writing():`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def writing(self) -> threading.Lock:
        return self._lock


@dataclass(frozen=True)
class BehindStage(Generic[T]):
    """Work running behind the current stage: its outcome and its progress so far."""

    name: str
    future: Future[T]
    tally: Tally

    def result(self) -> T:
        """Its outcome, once done (raises its error)."""
        return self.future.result()


class StageContext(Protocol):
    """What StagesBehind needs of a stage's context (pipeline.context.JobContext)."""

    progress: Any
    stop: StopSignal
    log: logging.Logger


class StagesBehind:
    """Stages running behind the current one, each on a thread of its own with its own Tally as
    its context's progress. A stage that fails stops the job (StopSignal.fail), so the stages
    waiting on it stop too and the job fails with its error. Used as a context manager: when the
    job ends early, every stage still running is stopped and waited for, before the spools they
    read are closed."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._running: list[BehindStage[Any]] = []

    def __enter__(self) -> StagesBehind:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        if error is not None:
            self._ctx.stop.fail(error)  # no-op when the job was stopped (cancelled, or a stage failed)
        for stage in self._running:
            done, _ = wait([stage.future], timeout=BEHIND_STOP_S)
            if not done:
                self._ctx.log.warning("the %s stage running behind did not stop within %ss", stage.name, BEHIND_STOP_S)

    def start(self, name: str, run: Callable[..., T], *args: Any) -> BehindStage[T]:
        """Run `run(ctx, *args)` on a thread named `name`, `ctx` reporting to a Tally of its own."""
        tally = self.tally()
        future: Future[T] = Future()
        stage = BehindStage(name, future, tally)
        threading.Thread(
            target=self._run,
            args=(future, run, dataclasses.replace(self._ctx, progress=tally), args),
            name=name,
            daemon=True,
        ).start()
        self._running.append(stage)
        return stage

    def tally(self) -> Tally:
        """A Tally for work done inside another stage behind (smoothing in the saving pass)."""
        return Tally(self._ctx.stop)

    def finish(self, *stages: BehindStage[Any]) -> None:
        """Wait for `stages`, reporting their progress (summed) as the current stage's."""

        def report() -> None:
            self._ctx.progress.advance(sum(stage.tally.done for stage in stages))

        for stage in stages:
            self._ctx.stop.result(stage.future, tick=report)
        report()

    def _run(self, future: Future[T], run: Callable[..., T], ctx: StageContext, args: tuple[Any, ...]) -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(run(ctx, *args))
        except BaseException as error:  # handed to whoever waits on it; the job stops
            self._ctx.stop.fail(error)
            future.set_exception(error)
