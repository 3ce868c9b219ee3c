"""The service's jobs: a bounded queue, worker threads, watchers, cancel, restarts.

Each job's reporter calls back here on every status change; watchers wait on
the job's condition. Stage transitions are kept, so a watcher that wakes late
still sees every stage it missed, not only the newest status.

Every job is also in a SQLite JobStore. On start, jobs that were queued or running when the
last process ended (crash, kill, shutdown) are queued again and run from the start; finished
ones stay listed. A shutdown interrupts running jobs at their next checkpoint (between batches)
and leaves them queued for the next start.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..config import Settings
from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, Unavailable, VideoEditError
from ..models import Models
from ..request import CheckedRequest, EditOptions, JobStatus, VideoEditRequest, VideoEditStatus
from .metrics import JobMetrics
from .reporter import JobReporter
from .runner import new_status, run_job
from .status_file import read_status
from .store import JobStore
from .validation import check_job_id, check_request

log = logging.getLogger(__name__)


@dataclass
class Job:
    checked: CheckedRequest
    latest: VideoEditStatus
    reporter: Optional[JobReporter] = None
    transitions: list[VideoEditStatus] = field(default_factory=list)  # status on entering each stage
    version: int = 0
    stage_entered_at: float = field(default_factory=time.time)  # unix seconds, for the stage metrics
    changed: threading.Condition = field(default_factory=threading.Condition)
    cancel: threading.Event = field(default_factory=threading.Event)


class JobManager:
    def __init__(self, settings: Settings, models: Models, store: JobStore, max_concurrent_jobs: int = 1,
                 max_queued_jobs: int = 100, metrics: Optional[JobMetrics] = None):
        self.settings = settings
        self.metrics = metrics or JobMetrics()
        self.models = models
        self.store = store
        self.max_queued_jobs = max_queued_jobs
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # shutdown: running jobs stop at a checkpoint, stay queued
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent_jobs, thread_name_prefix="job")
        # Jobs running side by side share the cores: each gets its part for decoding and encoding.
        self.codec_threads = max(1, (os.cpu_count() or 1) // max_concurrent_jobs)
        self._recover()

    def start(self, request: VideoEditRequest) -> VideoEditStatus:
        checked = check_request(request, self.settings)
        job_id = checked.request.job_id
        with self._lock:
            if self._stopping.is_set():
                raise Unavailable("the server is shutting down; retry on another replica or after the restart")
            existing = self._jobs.get(job_id)
            if existing is not None:
                if existing.checked.request == checked.request:
                    return existing.latest  # StartEdit is idempotent per job_id
                raise AlreadyExists(f"job {job_id!r} exists with a different request; pick another job_id")
            if read_status(checked.request.output_dir) is not None:
                raise AlreadyExists(f"job {job_id!r} already ran into {checked.request.output_dir}; "
                                    "pick another job_id or output_dir")
            queued = sum(j.latest.status is JobStatus.QUEUED for j in self._jobs.values())
            if queued >= self.max_queued_jobs:
                raise ResourceExhausted(f"{queued} jobs are queued (the limit); retry later")
            job = self._new_job(checked, new_status(checked))
            self.store.add(checked.request, job.latest)
        self._enqueue(job)
        log.info("job %s queued: %s -> %s", job_id, checked.request.input_video_path, checked.request.output_dir)
        return job.latest

    def get(self, job_id: str) -> VideoEditStatus:
        job = self._find(job_id)
        if job is not None:
            return job.latest
        status = read_status(self.settings.output_root / job_id)
        if status is None:
            raise NotFound(f"no job {job_id!r}")
        return status

    def input_path(self, job_id: str) -> Optional[Path]:
        """The input video of a job this server knows (None: a job of another server's store)."""
        job = self._find(job_id)
        return None if job is None else job.checked.request.input_video_path

    def watch(self, job_id: str, active: Callable[[], bool] = lambda: True) -> Iterator[VideoEditStatus]:
        """The current status now, then every change, ending after a terminal one."""
        job = self._find(job_id)
        if job is None:  # a job of an earlier server run: its stored status is final here
            yield self.get(job_id)
            return
        with job.changed:
            seen_transitions, seen_version, latest = len(job.transitions), job.version, job.latest
        yield latest
        while not latest.status.terminal:
            with job.changed:
                while job.version == seen_version and active():
                    job.changed.wait(timeout=1.0)
                if not active():
                    return
                missed = job.transitions[seen_transitions:]
                seen_transitions, seen_version, latest = len(job.transitions), job.version, job.latest
            for status in missed:
                if status is not latest:
                    yield status
            yield latest

    def cancel(self, job_id: str) -> VideoEditStatus:
        job = self._find(job_id)
        if job is None:
            return self.get(job_id)  # not ours to cancel; finished jobs stay finished
        job.cancel.set()
        if job.latest.status is JobStatus.QUEUED:
            assert job.reporter is not None
            job.reporter.publish(status=JobStatus.CANCELLED, message="cancelled before it started")
        return job.latest

    def list(self, status: Optional[JobStatus], page_size: int, page_token: str) -> tuple[list[VideoEditStatus], str]:
        if page_size < 0 or page_size > 1000:
            raise InvalidArgument("page_size", f"{page_size} is out of range [0, 1000]")
        try:
            offset = int(page_token or 0)
        except ValueError:
            raise InvalidArgument("page_token", f"{page_token!r} is not a token this server gave out") from None
        with self._lock:
            jobs = sorted((j.latest for j in self._jobs.values()), key=lambda s: s.created_at or 0, reverse=True)
        if status is not None:
            jobs = [s for s in jobs if s.status is status]
        size = page_size or 50
        page = jobs[offset:offset + size]
        return page, str(offset + size) if offset + size < len(jobs) else ""

    def shutdown(self) -> None:
        """Refuse new jobs; running ones stop at their next checkpoint and, like the queued
        ones, stay queued in the store for the next start."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def _find(self, job_id: str) -> Optional[Job]:
        check_job_id(job_id)
        with self._lock:
            return self._jobs.get(job_id)

    def _on_status(self, job: Job, status: VideoEditStatus) -> None:
        self.store.update(status)
        with job.changed:
            if status.status is not job.latest.status:
                self.metrics.moved(job.latest, job.stage_entered_at, status)
                job.stage_entered_at = status.updated_at or time.time()
                job.transitions.append(status)
            job.latest = status
            job.version += 1
            job.changed.notify_all()

    def _new_job(self, checked: CheckedRequest, status: VideoEditStatus) -> Job:
        job = Job(checked=checked, latest=status)
        job.reporter = JobReporter(status, checked.request.output_dir, cancel=job.cancel, interrupt=self._stopping,
                                   listener=lambda s, job=job: self._on_status(job, s))
        self._jobs[checked.request.job_id] = job
        self.metrics.added(status)
        return job

    def _enqueue(self, job: Job) -> None:
        assert job.reporter is not None
        job.reporter.publish()  # status.json and the store: queued
        self._executor.submit(self._run, job)

    def _recover(self) -> None:
        """Load the store: keep finished jobs, queue again the ones that never finished."""
        requeue = []
        for request, status in self.store.load():
            if status.status.terminal:
                self._keep_ended(request, status)
                continue
            try:
                checked = check_request(request, self.settings)
            except VideoEditError as err:  # e.g. the input was deleted while the server was down
                failed = dataclasses.replace(status, status=JobStatus.FAILED, updated_at=time.time(),
                                             error=f"could not run again after a restart: {err}")
                self._keep_ended(request, failed)
                self.store.update(failed)
                continue
            for scratch in checked.request.output_dir.glob(".work-*"):  # a killed run's leftovers
                shutil.rmtree(scratch, ignore_errors=True)
            again = dataclasses.replace(status, status=JobStatus.QUEUED, progress=0.0, current_frame=None,
                                        total_frames=None, updated_at=time.time(),
                                        message=f"queued again after a server restart (was {status.status.value})")
            requeue.append(self._new_job(checked, again))
        for job in requeue:
            self._enqueue(job)
        if requeue:
            log.info("re-queued %d job(s) left unfinished by the last run: %s", len(requeue),
                     ", ".join(j.latest.job_id for j in requeue))

    def _keep_ended(self, request: VideoEditRequest, status: VideoEditStatus) -> None:
        """A job that will not run again: listed and readable, never re-validated."""
        self._jobs[request.job_id] = Job(checked=CheckedRequest(request, EditOptions()), latest=status)
        self.metrics.added(status)

    def _run(self, job: Job) -> None:
        if job.cancel.is_set() or self._stopping.is_set():
            return
        assert job.reporter is not None
        final = run_job(job.checked, self.models, job.reporter, self.codec_threads)
        log.info("job %s %s%s", final.job_id, final.status.value, f": {final.error}" if final.error else "")
