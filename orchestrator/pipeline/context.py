"""What the stages get (the job, the probed video, the models, progress, the job's logger and
a scratch directory; built by the driver once the video is probed) and what one stage hands
the next through the driver."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from ..media.decode import VideoInfo
from ..models import Models, Tracker
from ..request import EditOptions, JobStatus, VideoEditRequest
from ..vision.crop import Box
from ..vision.stitching import IdStitcher, Objects


class Progress(Protocol):
    """Where the pipeline reports what it is doing (jobs.reporter.JobReporter). Every call is
    also a cancellation checkpoint: it raises JobCancelled when the job was asked to stop."""

    def stage(self, stage: JobStatus, message: str, total_frames: Optional[int] = None) -> None:
        """A new stage starts (called by the driver only)."""

    def advance(self, done: int, message: Optional[str] = None) -> None:
        """`done` frames of the current stage are finished."""

    def complete(self, done: int, message: Optional[str] = None) -> None:
        """The current stage ended after `done` frames, earlier than planned."""

    def checkpoint(self) -> None:
        """Only the cancellation checkpoint: for a stage that waits on another, reporting nothing."""


class Tally:
    """The Progress of work that runs behind the current stage: it only counts; the driver reports
    the count when that work's own stage comes."""

    def __init__(self) -> None:
        self.done = 0

    def stage(self, stage: JobStatus, message: str, total_frames: Optional[int] = None) -> None:
        pass

    def advance(self, done: int, message: Optional[str] = None) -> None:
        self.done = max(self.done, done)

    def complete(self, done: int, message: Optional[str] = None) -> None:
        self.done = done

    def checkpoint(self) -> None:
        pass


@dataclass(frozen=True)
class Pasted:
    """A frame's edit as the saving pass pasted it: its box, the pixels, the paste weight."""

    box: Box
    pixels: np.ndarray  # RGB uint8, box-sized: the source with the edit pasted in
    weight: np.ndarray  # uint8 alpha, box-sized (vision.compositing.paste_weight)


class FrameFilter(Protocol):
    """Work that the saving pass does on each decoded source frame, in order (smoothing)."""

    def __call__(self, index: int, frame: Optional[np.ndarray], pasted: Optional[Pasted]) -> None:
        """Write frame `index`'s final box into `frame` (the decoded source, RGB), given its edit as
        pasted (None: the frame has no edit, and `frame` may be None: not converted to RGB)."""


# How often a stage waiting on another (or on the model server) checks whether the job ended.
WAIT_CHECK_S = 0.25


class Stopped(Exception):
    """The job ended while a stage running behind another waited for its frames."""


class FrameWatermark:
    """How far a stage's output is final: frames [0, value) will not change any more. A stage
    running behind another waits on it frame by frame."""

    def __init__(self) -> None:
        self._value = 0
        self._stopped = False
        self._changed = threading.Condition()

    def advance(self, value: int) -> None:
        """Frames [0, value) are final. Raises Stopped once the job has ended: nobody waits any more,
        so the stage that advances stops too."""
        with self._changed:
            if self._stopped:
                raise Stopped()
            if value > self._value:
                self._value = value
                self._changed.notify_all()

    def finish(self) -> None:
        """Every frame is final."""
        self.advance(2**62)

    def stop(self) -> None:
        """The job ends (failed, cancelled): waiters raise Stopped."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def wait(self, index: int) -> None:
        """Until frame `index` is final."""
        with self._changed:
            while self._value <= index and not self._stopped:
                self._changed.wait()
            if self._stopped:
                raise Stopped()


@dataclass(frozen=True)
class TrackedFrame:
    """A frame whose mask is final, as propagating hands it to editing."""

    index: int
    box: Optional[Box]  # its mask's bounding box (None: no object)
    pixels: Optional[np.ndarray]  # RGB uint8, when it has an object (editing needs no others)


class TrackedFrames:
    """Frames handed from propagating to editing, which runs behind it, in order as their masks
    become final: the model server edits while it tracks, and the frames are cropped from the
    decode tracking made (no second decode). Holds at most `capacity` frames: propagating waits
    for editing when it is that far ahead, so memory stays flat. `stop` ends both sides (Stopped)."""

    def __init__(self, capacity: int) -> None:
        self._queue: deque[TrackedFrame] = deque()
        self._capacity = capacity
        self._finished = self._stopped = False
        self._changed = threading.Condition()

    def put(self, frame: TrackedFrame, waiting: Callable[[], None] = lambda: None) -> None:
        """Hand `frame` over; while the hand-over is full, call `waiting` every WAIT_CHECK_S (a
        cancellation checkpoint: the job may end while editing waits on the model server)."""
        while True:
            with self._changed:
                if self._stopped:
                    raise Stopped()
                if len(self._queue) < self._capacity:
                    self._queue.append(frame)
                    self._changed.notify_all()
                    return
                self._changed.wait(WAIT_CHECK_S)
            waiting()

    def check(self) -> None:
        """Raise Stopped when the hand-over was stopped."""
        if self._stopped:
            raise Stopped()

    def finish(self) -> None:
        """Every frame was put."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def stop(self) -> None:
        """The job ends (failed, cancelled), or editing failed: both sides raise Stopped."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[TrackedFrame]:
        while True:
            with self._changed:
                while not self._queue and not self._finished and not self._stopped:
                    self._changed.wait()
                if self._stopped:
                    raise Stopped()
                if not self._queue:
                    return
                frame = self._queue.popleft()
                self._changed.notify_all()
            yield frame


class KeyframePlan:
    """Which frames the model edits (the keyframes), decided front to back. Adaptive keyframes are
    found by a pass over the video that runs beside editing and carrying: reading frame i's entry
    waits until the plan has got that far (raises Stopped when the job ends first)."""

    def __init__(self, count: int) -> None:
        self._keys = [False] * count
        self.decided = FrameWatermark()  # frames [0, value) are decided

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


@dataclass(frozen=True)
class JobContext:
    request: VideoEditRequest
    options: EditOptions
    info: VideoInfo  # the probed input
    models: Models
    progress: Progress
    log: logging.Logger
    workdir: Path  # scratch space, removed when the job ends
    threads: int = 0  # decoder/encoder threads (0: FFmpeg/x264 pick, one or more per core)


@dataclass
class Sighting:
    """Where the objects were first found: one chunk of frames with video-wide object ids."""

    start: int  # index of the chunk's first frame
    frames: list[np.ndarray]  # the chunk's frames (its last ones overlap the next chunk)
    objects: list[Objects]  # per frame of the chunk
    keep: frozenset[int] | None  # ids to edit; None: every object, also ones that appear later
    stitcher: IdStitcher  # carries on numbering objects for propagating
    tracker: Tracker  # the tracking session that found them: propagating carries it on (and closes it)
    run_start: int  # the video index of the tracker's first frame
