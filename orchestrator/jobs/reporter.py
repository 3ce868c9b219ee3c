"""Progress reporting: one object the pipeline tells what it is doing.

It keeps the job's VideoEditStatus, maps per-stage frame counts onto one
monotonic 0..1 progress, writes `status.json` (throttled, except on stage
changes), tells listeners (WatchStatus streams) and checks for cancellation,
so every stage gets all of that from one `advance()` call between batches.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from videoedit.v1 import contract

from ..pipeline.concurrency import StopSignal
from ..request import JobStatus, VideoEditStatus
from .claims import JobClaim, OwnedOutright
from .eta import Timing, estimate
from .status_file import write_status

# Share of overall progress each stage covers (start, end), from the shared stage list.
STAGE_BANDS: dict[JobStatus, tuple[float, float]] = {
    JobStatus.QUEUED: (0.0, 0.0),
    **{JobStatus(s.name): (s.progress_start, s.progress_end) for s in contract.STAGES},
}
WRITE_INTERVAL_S = 0.25

Listener = Callable[[VideoEditStatus], None]


class JobReporter:
    """The Progress of one running job: its status as the pipeline reports it, recorded through
    the job's claim (the job store, when there is one) and then written to status.json, and told
    to `listener` (watchers, metrics); every report first checks the job's `stop` signal. A job
    that is not this process's any more (its claim says so) writes no status.json."""

    def __init__(
        self,
        status: VideoEditStatus,
        output_dir: Path,
        listener: Listener | None = None,
        stop: StopSignal | None = None,
        claim: JobClaim | None = None,
    ):
        self._status = status
        self._output_dir = output_dir
        self._listener = listener
        self.stop = stop or StopSignal()  # cancel, shutdown, lease lost, a stage failed
        self.claim: JobClaim = claim or OwnedOutright()
        self._published = status.status  # the state last published (a change is a new stage)
        self._last_write = 0.0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # status.json writes, in the order the statuses were made
        self._stage_started = self._run_started = time.monotonic()
        self._stage_cpu_started = time.process_time()
        self.stage_seconds: dict[str, float] = {}  # wall time per finished stage, for the log
        # CPU time of the whole process (every thread, every job in it) per finished stage
        self.stage_cpu_seconds: dict[str, float] = {}

    @property
    def status(self) -> VideoEditStatus:
        with self._lock:
            return dataclasses.replace(self._status)

    def check_cancelled(self, finishing: bool = False) -> None:
        """Raise if the job must stop (StopSignal.raise_if_stopped). `finishing`: its outputs are
        written; a server shutdown no longer throws them away."""
        self.stop.raise_if_stopped(finishing)

    def publish(self, **changes) -> None:
        """Set fields and record/write/notify at once."""
        self._update(changes, force=True)

    def final(self, **changes) -> VideoEditStatus:
        """The status with `changes`, as the job's end would publish it (not published)."""
        with self._lock:
            ended = dataclasses.replace(self._status, updated_at=time.time(), **changes)
        # An end has its run's length and nothing left; a job queued again has neither yet.
        running = ended.status is not JobStatus.QUEUED
        elapsed = time.monotonic() - self._run_started if running else None
        return dataclasses.replace(ended, elapsed_seconds=elapsed, eta_seconds=None, stage_eta_seconds=None)

    def ended(self, status: VideoEditStatus) -> None:
        """Publish the job's end, already recorded in the job store (claim.finish / release)."""
        with self._lock:
            self._status = status
            self._published = status.status
        self._write(status)
        if self._listener:
            self._listener(status)

    def probed(self, media: dict) -> None:
        self.publish(media=media)

    def stage(self, stage: JobStatus, message: str, total_frames: int | None = None) -> None:
        self.check_cancelled()
        self.end_stage()
        start, _ = STAGE_BANDS[stage]
        self._update(
            dict(
                status=stage,
                message=message,
                total_frames=total_frames,
                current_frame=0 if total_frames else None,
                progress=start,
            ),
            force=True,
        )

    def end_stage(self) -> None:
        """Close the timing of the current stage (a stage entered twice adds up)."""
        now, cpu_now = time.monotonic(), time.process_time()
        name = self._status.status.value
        if not self._status.status.terminal and name != "queued":
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + now - self._stage_started
            self.stage_cpu_seconds[name] = self.stage_cpu_seconds.get(name, 0.0) + cpu_now - self._stage_cpu_started
        self._stage_started, self._stage_cpu_started = now, cpu_now

    def advance(self, done: int, message: str | None = None) -> None:
        """`done` frames of the current stage are finished; raises if the job must stop."""
        self.check_cancelled()
        with self._lock:
            stage, total = self._status.status, self._status.total_frames
        start, end = STAGE_BANDS[stage]
        fraction = min(done / total, 1.0) if total else 0.0
        changes = dict(current_frame=done, progress=start + (end - start) * fraction)
        if message:
            changes["message"] = message
        # The last frame of a stage is always published, so watchers see it complete.
        self._update(changes, force=bool(total) and done >= total)

    def complete(self, done: int, message: str | None = None) -> None:
        """The current stage ended after `done` frames, earlier than its planned total (masking
        stops at the chunk where the object is found): progress bars end full, not part-way."""
        self.check_cancelled()
        _, end = STAGE_BANDS[self.status.status]
        changes = dict(total_frames=done, current_frame=done, progress=end)
        if message:
            changes["message"] = message
        self._update(changes, force=True)

    def _update(self, changes: dict, force: bool) -> None:
        with self._lock:
            if "progress" in changes and changes.get("status") is not JobStatus.QUEUED:
                # progress never goes back, except when an interrupted job is queued again
                changes["progress"] = max(self._status.progress, changes["progress"])
            self._status = dataclasses.replace(self._status, updated_at=time.time(), **changes)
            now = time.monotonic()
            self._status = self._timed(self._status, now)
            if not force and now - self._last_write < WRITE_INTERVAL_S:
                return
            self._last_write = now
            snapshot = dataclasses.replace(self._status)
            new_stage, self._published = snapshot.status is not self._published, snapshot.status
        if self.claim.update(snapshot, new_stage):  # the store first: status.json only while the job is ours
            self._write(snapshot)
        if self._listener:
            self._listener(snapshot)

    def _timed(self, status: VideoEditStatus, now: float) -> VideoEditStatus:
        """`status` with the run's elapsed seconds and its estimate of the seconds left."""
        if status.status is JobStatus.QUEUED or status.status.terminal:
            return status
        start, end = STAGE_BANDS[status.status]
        timing = Timing(status.progress, start, end, now - self._stage_started, now - self._run_started)
        left = estimate(timing)
        return dataclasses.replace(
            status,
            elapsed_seconds=now - self._run_started,
            eta_seconds=left.job if left is not None else None,
            stage_eta_seconds=left.stage if left is not None else None,
        )

    def _write(self, status: VideoEditStatus) -> None:
        with self._write_lock:
            if self.claim.holds():
                write_status(self._output_dir, status)
