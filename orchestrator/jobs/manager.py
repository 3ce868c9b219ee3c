"""The service's jobs: accepted into the job store, claimed and run by worker threads,
watched, cancelled; shared with any other orchestrator on the same store.

The store (jobs/store/) is the one source of truth; this process keeps only the jobs it is
running. A claim loop takes queued jobs while a worker is free, renews the leases of the
running ones (and picks up cancel requests made on any orchestrator), and stops a job whose
lease another orchestrator took over. Shutdown stops running jobs at once (their StopSignal ends
every wait of the pipeline) and hands them back to the queue. An orchestrator that died without that
(crash, SIGKILL) leaves leases that expire; its jobs then run again from the start on whichever
orchestrator claims them, or at once on its own restart on the same machine.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, Unavailable, VideoEditError
from ..models import Models
from ..pipeline.concurrency import StopReason, StopSignal
from ..request import CheckedRequest, JobStatus, VideoEditRequest, VideoEditStatus
from .metrics import JobMetrics
from .reporter import JobReporter
from .runner import new_status, run_job
from .status_file import STATUS_FILE, read_status, write_status
from .store import Claim, JobStore
from .validation import check_job_id, check_request

log = logging.getLogger(__name__)

# How often an orchestrator looks for claimable jobs when nothing woke it, and how long a watcher
# of a job running on another orchestrator may lag behind it.
POLL_S = 0.5


def orchestrator_id() -> str:
    """host:pid:nonce - unique per process; the host and pid let a restart on the same machine
    recognise its dead predecessor's leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class RunningJob:
    """A job this orchestrator has claimed."""

    checked: CheckedRequest
    latest: VideoEditStatus
    attempt: int
    reporter: JobReporter | None = None
    stage_entered_at: float = field(default_factory=time.time)  # unix seconds, for the stage metrics
    stop: StopSignal = field(default_factory=StopSignal)  # cancel, shutdown, lease lost: the pipeline stops


class JobManager:
    """What the RPCs call for jobs (start, get, watch, cancel, list) and what runs them: a claim
    loop that takes queued jobs from the shared store while a worker is free and keeps their
    leases, and the workers that run them. One per orchestrator process."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        store: JobStore,
        max_concurrent_jobs: int = 1,
        max_queued_jobs: int = 100,
        metrics: JobMetrics | None = None,
        name: str | None = None,
    ):
        self.settings = settings
        self.models = models
        self.store = store
        self.name = name or orchestrator_id()
        self.metrics = metrics or JobMetrics(store.counts)
        self.max_queued_jobs = max_queued_jobs
        self.lease_s = settings.job_lease_s
        self._running: dict[str, RunningJob] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # notified on every status this process writes
        self._wake = threading.Event()  # a job was added or a worker freed: claim now
        self._free_workers = threading.Semaphore(max_concurrent_jobs)
        self._stopping = threading.Event()  # shutdown: no new jobs; running ones stop and go back to the queue
        self._drained = threading.Event()  # shutdown: no job runs here any more
        # max_concurrent_jobs 0: an API-only orchestrator, which never claims a job.
        self._executor = ThreadPoolExecutor(max_workers=max(1, max_concurrent_jobs), thread_name_prefix="job")
        # Jobs running side by side share the cores: each gets its part for decoding and encoding.
        self.codec_threads = max(1, (os.cpu_count() or 1) // max(1, max_concurrent_jobs))
        self._expire_dead_predecessors()
        self._claimer = threading.Thread(target=self._claim_loop, name="job-claims", daemon=True)
        self._claimer.start()

    # --- what the RPCs call ---

    def start(self, request: VideoEditRequest) -> VideoEditStatus:
        checked = check_request(request, self.settings)
        req = checked.request
        if self._stopping.is_set():
            raise Unavailable("the server is shutting down; retry on another replica or after the restart")
        existing = self.store.get(req.job_id)
        if existing is None:
            if read_status(req.output_dir) is not None:
                raise AlreadyExists(
                    f"job {req.job_id!r} already ran into {req.output_dir}; pick another job_id or output_dir"
                )
            queued = self.store.counts()[JobStatus.QUEUED]
            if queued >= self.max_queued_jobs:
                raise ResourceExhausted(f"{queued} jobs are queued (the limit); retry later")
            status = new_status(checked)
            write_status(req.output_dir, status)  # the original worker's status.json exists once StartEdit returns
            try:
                existing = self.store.add(req, status)
            except BaseException:
                (req.output_dir / STATUS_FILE).unlink(missing_ok=True)  # nothing stored: nothing to show
                raise
            if existing is None:
                self._wake.set()
                log.info("job %s queued: %s -> %s", req.job_id, req.input_video_path, req.output_dir)
                return status
        if existing.request == req:
            return existing.status  # StartEdit is idempotent per job_id, on any orchestrator
        raise AlreadyExists(f"job {req.job_id!r} exists with a different request; pick another job_id")

    def get(self, job_id: str) -> VideoEditStatus:
        check_job_id(job_id)
        stored = self.store.get(job_id)
        if stored is not None:
            return stored.status
        status = read_status(self.settings.output_root / job_id)  # a job of another store, e.g. one of legacy_api
        if status is None:
            raise NotFound(f"no job {job_id!r}")
        return status

    def input_path(self, job_id: str) -> Path | None:
        """The input video of a job in the store (None: a job only known by its status.json)."""
        check_job_id(job_id)
        stored = self.store.get(job_id)
        return None if stored is None else stored.request.input_video_path

    def watch(self, job_id: str, active: Callable[[], bool] = lambda: True) -> Iterator[VideoEditStatus]:
        """The current status now, then every change (the status on entering each stage, however
        short, and the latest), ending after a terminal one. Jobs run here wake the watcher at
        once; jobs run by other orchestrators are seen within POLL_S."""
        check_job_id(job_id)
        stored = self.store.get(job_id)
        if stored is None:
            yield self.get(job_id)
            return
        latest, version = stored.status, stored.version
        yield latest
        while not latest.status.terminal:
            with self._changed:
                self._changed.wait(timeout=POLL_S)
            if not active():
                return
            stored = self.store.get(job_id)
            if stored is None or stored.version == version:
                continue
            yield from self.store.transitions(job_id, after_version=version, up_to_version=stored.version - 1)
            latest, version = stored.status, stored.version
            yield latest

    def cancel(self, job_id: str) -> VideoEditStatus:
        check_job_id(job_id)
        stored = self.store.get(job_id)
        if stored is None or stored.status.status.terminal:
            return self.get(job_id)  # finished jobs stay finished; jobs of other stores are not ours
        if stored.status.status is JobStatus.QUEUED:
            cancelled = dataclasses.replace(
                stored.status, status=JobStatus.CANCELLED, updated_at=time.time(), message="cancelled before it started"
            )
            if self.store.cancel_queued(cancelled):
                write_status(cancelled.output_dir, cancelled)
                self.metrics.ended.labels(JobStatus.CANCELLED.value).inc()
                self._notify()
                return cancelled
        # Claimed: its owner (this or another orchestrator) stops it at once (its StopSignal).
        self.store.request_cancel(job_id)
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running.stop.stop(StopReason.CANCELLED)
        return self.get(job_id)

    def list(self, status: JobStatus | None, page_size: int, page_token: str) -> tuple[list[VideoEditStatus], str]:
        if page_size < 0 or page_size > 1000:
            raise InvalidArgument("page_size", f"{page_size} is out of range [0, 1000]")
        try:
            offset = int(page_token or 0)
            if offset < 0:
                raise ValueError
        except ValueError:
            raise InvalidArgument("page_token", f"{page_token!r} is not a token this server gave out") from None
        size = page_size or 50
        page = self.store.list(status, size + 1, offset)
        return page[:size], str(offset + size) if len(page) > size else ""

    def shutdown(self) -> None:
        """Refuse new jobs and claim none; running ones stop at once and go back to the queue, for
        another orchestrator (or this one's next start). Then close the models: the calls the
        stopped jobs left in flight are cancelled, and waited for."""
        with self._lock:
            self._stopping.set()
            for running in self._running.values():
                running.stop.stop(StopReason.SHUTDOWN)
        self._wake.set()
        self._executor.shutdown(wait=True)  # the claim loop keeps their leases meanwhile
        self._drained.set()
        self._claimer.join()
        self.store.close()
        self.models.close()

    # --- claiming and running ---

    def _claim_loop(self) -> None:
        renew_every = min(1.0, self.lease_s / 4)
        last_renewed = time.monotonic()
        while not self._drained.is_set():
            try:
                if time.monotonic() - last_renewed >= renew_every:
                    self._renew_leases()
                    last_renewed = time.monotonic()
                while self._free_workers.acquire(blocking=False):
                    started = False
                    try:
                        claim = None if self._stopping.is_set() else self.store.claim(self.name, self.lease_s)
                        started = claim is not None and self._begin(claim)
                    finally:
                        if not started:
                            self._free_workers.release()  # the worker runs nothing after all
                    if claim is None:
                        break
            except Exception as err:  # the database may be briefly away: keep trying, say so
                log.warning("job store: %s: %s (retrying)", type(err).__name__, err)
                if time.monotonic() - last_renewed > self.lease_s:
                    self._lose_all("the job store could not be reached to renew their leases")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _renew_leases(self) -> None:
        with self._lock:
            mine = dict(self._running)
        if not mine:
            return
        held = {lease.job_id: lease for lease in self.store.renew(self.name, self.lease_s)}
        self.metrics.lease_renewals.inc(len(held))
        for job_id, running in mine.items():
            lease = held.get(job_id)
            if lease is None:
                if not (running.latest.status is JobStatus.QUEUED or running.latest.status.terminal):
                    self._lose(running, "its lease went to another orchestrator")  # not just handed back
            elif lease.cancel_requested:
                running.stop.stop(StopReason.CANCELLED)

    def _lose(self, running: RunningJob, why: str) -> None:
        if not running.stop.stopped_for(StopReason.LEASE_LOST):
            running.stop.stop(StopReason.LEASE_LOST)
            self.metrics.leases_lost.inc()
            log.warning("job %s: stopping it here: %s", running.checked.request.job_id, why)

    def _lose_all(self, why: str) -> None:
        with self._lock:
            mine = list(self._running.values())
        for running in mine:
            self._lose(running, why)

    def _begin(self, claim: Claim) -> bool:
        """Start a job just claimed on a worker (its slot already taken); False when it ended
        without running (cancelled, or no longer valid)."""
        stored, job_id = claim.job, claim.job.request.job_id
        was = stored.status
        try:
            checked = check_request(stored.request, self.settings)
        except VideoEditError as err:  # e.g. the input was deleted while the job waited
            self._end_unrun(stored.status, JobStatus.FAILED, error=f"could not run: {err}")
            return False
        if claim.cancel_requested:
            self._end_unrun(stored.status, JobStatus.CANCELLED, message="cancelled")
            return False
        if was.status is JobStatus.QUEUED:
            self.metrics.queue_wait.observe(max(0.0, time.time() - (was.updated_at or time.time())))
        if claim.attempt > 1:
            for scratch in checked.output_dir.glob(".work-*"):  # a stopped run's leftovers
                shutil.rmtree(scratch, ignore_errors=True)
        status = was
        if claim.previous_owner is not None:
            self.metrics.lease_expiries.inc()
            log.warning(
                "job %s: taken over from orchestrator %s, whose lease expired while the job was %s; "
                "it runs again from the start",
                job_id,
                claim.previous_owner,
                was.status.value,
            )
            status = dataclasses.replace(
                was,
                status=JobStatus.QUEUED,
                progress=0.0,
                current_frame=None,
                total_frames=None,
                updated_at=time.time(),
                message=f"queued again: orchestrator {claim.previous_owner} stopped while "
                f"{was.status.value} (attempt {claim.attempt})",
            )
        if status is not was:
            self.store.update(status, self.name, new_stage=True)  # watchers see it start over
        write_status(checked.output_dir, status)
        running = RunningJob(checked=checked, latest=status, attempt=claim.attempt)
        running.reporter = JobReporter(
            status, checked.output_dir, stop=running.stop, listener=lambda s, r=running: self._on_status(r, s)
        )
        with self._lock:
            self._running[job_id] = running
            if self._stopping.is_set():  # claimed as the shutdown began: it stops at once, queued again
                running.stop.stop(StopReason.SHUTDOWN)
        log.info("job %s claimed (attempt %d)", job_id, claim.attempt)
        self._executor.submit(self._run, running)
        return True

    def _run(self, running: RunningJob) -> None:
        job_id = running.checked.request.job_id
        assert running.reporter is not None
        try:
            final = run_job(
                running.checked,
                self.models,
                running.reporter,
                self.codec_threads,
                orchestrator=self.name,
                attempt=running.attempt,
            )
            log.info("job %s %s%s", job_id, final.status.value, f": {final.error}" if final.error else "")
        except Exception:
            log.exception("job %s: could not be run", job_id)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
            self._free_workers.release()
            self._wake.set()

    def _on_status(self, running: RunningJob, status: VideoEditStatus) -> None:
        """Every status a running job publishes (status.json is written already). A job that
        ended, or was interrupted and queued again, goes back to the store unowned."""
        new_stage = status.status is not running.latest.status
        release = status.status.terminal or status.status is JobStatus.QUEUED
        try:
            held = self.store.update(status, self.name, new_stage, release)
        except Exception as err:  # keep running; the next write (or lease check) decides
            log.warning("job %s: could not write its status to the job store: %s", status.job_id, err)
            held = True
        if not held and not running.stop.stopped_for(StopReason.LEASE_LOST):
            self._lose(running, "another orchestrator holds it now")
        if new_stage:
            self.metrics.moved(running.latest, running.stage_entered_at, status)
            running.stage_entered_at = status.updated_at or time.time()
        running.latest = status
        self._notify()

    def _end_unrun(self, was: VideoEditStatus, end: JobStatus, **fields) -> None:
        """End a claimed job without running it (cancelled while queued, no longer valid)."""
        final = dataclasses.replace(was, status=end, updated_at=time.time(), **fields)
        self.store.update(final, self.name, new_stage=True, release=True)
        write_status(final.output_dir, final)
        self.metrics.ended.labels(end.value).inc()
        log.info("job %s %s without running: %s", final.job_id, end.value, final.error or final.message)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _expire_dead_predecessors(self) -> None:
        """Leases of an earlier orchestrator on this machine whose process is gone (a crash or
        SIGKILL, then a restart) end now, so its jobs re-run without waiting out the lease."""
        host = socket.gethostname()
        for owner in self.store.owners():
            owner_host, _, rest = owner.partition(":")
            pid_text = rest.partition(":")[0]
            if owner_host != host or not pid_text.isdigit() or owner == self.name:
                continue
            pid = int(pid_text)
            if pid != os.getpid() and _alive(pid):
                continue  # another orchestrator on this machine, still running
            jobs = self.store.expire(owner)
            if jobs:
                log.info(
                    "re-queued %d job(s) left unfinished by %s, an earlier orchestrator on this machine "
                    "that stopped: %s",
                    len(jobs),
                    owner,
                    ", ".join(jobs),
                )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
