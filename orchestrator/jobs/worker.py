"""Running jobs: the claim loop and the worker threads of one orchestrator.

The claim loop takes queued jobs from the store while a worker is free and a model server is
ready, renews the leases of the jobs running here (only those), stops a job whose lease another
orchestrator took over or that it could not renew in time (by the local clock: claims.py), and
hands back to the queue the jobs it stopped. Each job runs on a worker thread (runner.run_job)
with its claim. Shutdown stops the running jobs at once (their StopSignal) and waits for them to
be handed back. What the job store and the model servers allow is told to `conditions`, which the
orchestrator's health follows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import Unavailable, VideoEditError
from ..media.mask_cache import MaskCache
from ..models import Models
from ..pipeline import MaskSources
from ..pipeline.concurrency import StopReason, StopSignal
from ..request import CheckedRequest, JobStatus, VideoEditRequest, VideoEditStatus
from .claims import HeldClaim
from .metrics import JobMetrics
from .reporter import JobReporter
from .reuse import masks_from
from .runner import describe_error, release_scratch, remove_scratch, run_job
from .status_file import write_status
from .store import Claim, Fence, JobStore
from .validation import check_request
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

# How often the claim loop looks for claimable jobs when nothing woke it.
POLL_S = 0.5
# How often the job counts that metrics answer with are read from the store.
COUNT_EVERY_S = 2.0
# What the orchestrator's health reports besides serving: the job store reached (its overall
# status), and whether it claims jobs (a gRPC health service of its own, NOT_SERVING while paused).
STORE, CLAIMS = "store", "claims"


def orchestrator_id() -> str:
    """host:pid:nonce - unique per process; the host and pid let a restart on the same machine
    recognise its dead predecessor's leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class RunningJob:
    """A job this orchestrator has claimed and runs."""

    checked: CheckedRequest
    latest: VideoEditStatus
    claim: HeldClaim
    slot: WorkerSlots  # the workers it runs on (freed when it ends)
    masks: MaskSources = MaskSources()  # where masks tracked before may come from
    reporter: JobReporter | None = None
    stage_entered_at: float = field(default_factory=time.time)  # unix seconds, for the stage metrics

    @property
    def stop(self) -> StopSignal:  # cancel, shutdown, lease lost: the pipeline stops
        return self.claim.stop


@dataclass
class WorkerSlots:
    """Workers for some jobs: `free` counts the idle ones; `previews_only`: one-frame jobs only."""

    name: str
    free: threading.Semaphore
    previews_only: bool = False


class Conditions:
    """What the orchestrator's health says besides serving (STORE, CLAIMS): None while all is
    well, else why not. Changes are logged and told to `on_change` (the gRPC health servicer)."""

    def __init__(self) -> None:
        self._why: dict[str, str | None] = {STORE: None, CLAIMS: None}
        self._lock = threading.Lock()
        self.on_change: Callable[[str, str | None], None] = lambda what, why: None

    def set(self, what: str, why: str | None) -> None:
        with self._lock:
            if self._why[what] == why:
                return
            self._why[what] = why
        if why is None:
            log.info("%s: back to normal", what)
        else:
            log.warning("%s: %s", what, why)
        self.on_change(what, why)

    def why(self, what: str) -> str | None:
        with self._lock:
            return self._why[what]


class JobWorker:
    """Claims jobs from the store and runs them, each on a worker thread with its claim; one per
    orchestrator process (max_concurrent_jobs 0: an API-only orchestrator, which claims nothing)."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        store: JobStore,
        metrics: JobMetrics,
        name: str,
        max_concurrent_jobs: int,
        on_status: Callable[[], None],
        webhooks: WebhookSender,
    ):
        self.webhooks = webhooks  # told of every stage change and end of the jobs run here
        self.settings, self.models, self.store, self.metrics, self.name = settings, models, store, metrics, name
        self.lease_s = settings.job_lease_s
        self.conditions = Conditions()
        self.counts: dict[JobStatus, int] = {}  # the store's, read by the claim loop (metrics answer from it)
        self.tenant_counts: dict[str, dict[JobStatus, int]] = {}  # likewise, of the jobs not ended, by tenant
        self._on_status_changed = on_status  # a status of a job run here changed (watchers wake)
        self._running: dict[str, RunningJob] = {}
        self._releases: dict[Fence, VideoEditStatus] = {}  # stopped here, to hand back (claim loop)
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a job was added or a worker freed: claim now
        # Workers for any job, and (an orchestrator that runs jobs at all) workers of their own for
        # previews, so a one-frame job never waits behind a long one.
        previews = settings.preview_slots if max_concurrent_jobs else 0
        self._slots = [
            WorkerSlots("job", threading.Semaphore(max_concurrent_jobs)),
            WorkerSlots("preview", threading.Semaphore(previews), previews_only=True),
        ]
        self._stopping = threading.Event()  # shutdown: no new jobs; running ones stop and go back to the queue
        self._drained = threading.Event()  # shutdown: no job runs here any more
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, max_concurrent_jobs + previews), thread_name_prefix="job"
        )
        # Jobs running side by side share the cores: each gets its part for decoding and encoding.
        self.codec_threads = max(1, (os.cpu_count() or 1) // max(1, max_concurrent_jobs))
        self.mask_cache = (
            MaskCache(settings.mask_cache_dir, settings.mask_cache_bytes) if settings.mask_cache_bytes else None
        )
        self._expire_dead_predecessors()
        self._claimer = threading.Thread(target=self._claim_loop, name="job-claims", daemon=True)
        self._claimer.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """A job was queued: look for it now."""
        self._wake.set()

    def cancel(self, key: str) -> None:
        """Stop the job of this key (request.key) if it runs here."""
        with self._lock:
            running = self._running.get(key)
        if running is not None:
            running.stop.stop(StopReason.CANCELLED)

    def begin_shutdown(self) -> None:
        """Claim no more; running jobs stop at once (to go back to the queue)."""
        with self._lock:
            self._stopping.set()
            for running in self._running.values():
                running.stop.stop(StopReason.SHUTDOWN)
        self._wake.set()

    def shutdown(self) -> None:
        """begin_shutdown, then wait for the running jobs to be handed back to the queue."""
        self.begin_shutdown()
        self._executor.shutdown(wait=True)  # the claim loop keeps their leases meanwhile
        self._drained.set()
        self._claimer.join()
        try:  # jobs stopped here that could not be handed back yet: one more try
            self._hand_back_stopped()
        except Unavailable as err:
            log.warning("shutdown: stopped jobs not handed back (their leases will expire): %s", err)

    def _claim_loop(self) -> None:
        renew_every = min(1.0, self.lease_s / 4)
        last_renewed = last_counted = 0.0
        while not self._drained.is_set():
            self._stop_overdue()  # by the local clock: needs no database
            try:
                if time.monotonic() - last_renewed >= renew_every:
                    self._renew_leases()
                    last_renewed = time.monotonic()
                self._hand_back_stopped()
                if time.monotonic() - last_counted >= COUNT_EVERY_S:
                    self.counts = self.store.counts()
                    self.tenant_counts = self.store.counts_by_tenant()
                    last_counted = time.monotonic()
                self._claim_while_free()
                self.conditions.set(STORE, None)
            except Unavailable as err:  # the database is away: keep trying; the leases decide by the clock
                self.conditions.set(STORE, str(err))
            except Exception as err:
                log.exception("claim loop: %s (retrying)", err)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _claim_while_free(self) -> None:
        """Claim queued jobs while a worker is free (any job's first, then a preview's), a model
        server is ready and no shutdown began."""
        for slots in self._slots:
            while not self._stopping.is_set() and slots.free.acquire(blocking=False):
                started = False
                try:
                    unready = self.models.unready()
                    self.conditions.set(CLAIMS, unready and f"claiming no job: {unready}")
                    if unready is not None:
                        return
                    claimed_at = time.monotonic()
                    claim = self.store.claim(self.name, self.lease_s, previews_only=slots.previews_only)
                    if claim is None:
                        break
                    started = self._begin(claim, claimed_at, slots)
                finally:
                    if not started:
                        slots.free.release()  # the worker runs nothing after all

    def _renew_leases(self) -> None:
        """Renew the leases of the jobs running here (only those: a job stopped here is handed
        back, never kept), and pick up cancel requests made on any orchestrator."""
        with self._lock:
            mine = {key: r for key, r in self._running.items() if r.claim.holds()}
        if not mine:
            return
        started = time.monotonic()
        held = {lease.key: lease for lease in self.store.renew([r.claim.fence for r in mine.values()], self.lease_s)}
        self.metrics.lease_renewals.inc(len(held))
        for key, running in mine.items():
            lease = held.get(key)
            if lease is not None:
                running.claim.renewed(started)
                if lease.cancel_requested:
                    running.stop.stop(StopReason.CANCELLED)
            elif not (running.latest.status is JobStatus.QUEUED or running.latest.status.terminal):
                running.claim.lose("its lease went to another orchestrator")  # not just handed back

    def _stop_overdue(self) -> None:
        """Stop the jobs whose lease could not be renewed in time, before another orchestrator may
        take them over (they write nothing from now on)."""
        with self._lock:
            mine = list(self._running.values())
        for running in mine:
            if running.claim.overdue() > 0:
                running.claim.lose(
                    f"its lease could not be renewed in time ({self.lease_s:g}s lease; the job store "
                    f"is unreachable: {self.conditions.why(STORE)})"
                )

    def _hand_back_stopped(self) -> None:
        """Hand back to the queue the jobs stopped here that nobody else took (the store refuses
        the others); tried again on every turn of the loop until the store answers."""
        with self._lock:
            pending = list(self._releases.items())
        for fence, status in pending:
            handed_back = self.store.release(status, fence)
            with self._lock:
                del self._releases[fence]
            if handed_back:
                log.info("job %s: handed back to the queue", fence.key)

    def _lost(self, key: str, why: str) -> None:
        self.metrics.leases_lost.inc()
        log.warning("job %s: stopping it here: %s", key, why)

    def _begin(self, claim: Claim, claimed_at: float, slots: WorkerSlots) -> bool:
        """Start a job just claimed (at `claimed_at`, time.monotonic) on a worker (its slot already
        taken); False when it ended without running (cancelled, no longer valid, nowhere to write)."""
        stored, key, was = claim.job, claim.job.request.key, claim.job.status
        held = HeldClaim(
            self.store, claim.fence, self.lease_s, claimed_at, StopSignal(), lambda why: self._lost(key, why)
        )
        try:
            checked = check_request(stored.request, self.settings)
            sources = MaskSources(masks_from(checked, self.store), self.mask_cache)
        except VideoEditError as err:  # e.g. the input was deleted while the job waited
            return self._end_unrun(held, stored.request, was, JobStatus.FAILED, error=f"could not run: {err}")
        if claim.cancel_requested:
            return self._end_unrun(held, stored.request, was, JobStatus.CANCELLED, message="cancelled")
        self.metrics.started(stored.request.tenant)
        if was.status is JobStatus.QUEUED:
            self.metrics.queue_wait.observe(max(0.0, time.time() - (was.updated_at or time.time())))
        status = self._started_over(claim) if claim.previous_owner is not None else was
        if status is not was:
            self.store.update(status, claim.fence, new_stage=True)  # watchers see it start over
        try:
            write_status(checked.output_dir, status)
        except OSError as err:  # a full volume: the job fails here, recorded, not claimed again and again
            why = f"could not start: {describe_error(err, checked.output_dir)}"
            return self._end_unrun(held, stored.request, status, JobStatus.FAILED, error=why)
        running = RunningJob(checked=checked, latest=status, claim=held, slot=slots, masks=sources)
        running.reporter = JobReporter(
            status, checked.output_dir, stop=held.stop, claim=held, listener=lambda s, r=running: self._on_status(r, s)
        )
        with self._lock:
            self._running[key] = running
            if self._stopping.is_set():  # claimed as the shutdown began: it stops at once, queued again
                running.stop.stop(StopReason.SHUTDOWN)
        log.info("job %s claimed (attempt %d, a %s worker)", key, claim.attempt, slots.name)
        self._executor.submit(self._run, running)
        return True

    def _started_over(self, claim: Claim) -> VideoEditStatus:
        """The status of a job taken over from an orchestrator whose lease expired."""
        was = claim.job.status
        self.metrics.lease_expiries.inc()
        log.warning(
            "job %s: taken over from orchestrator %s, whose lease expired while the job was %s; "
            "it runs again from the start",
            claim.fence.key,
            claim.previous_owner,
            was.status.value,
        )
        return _queued_again(
            was,
            f"queued again: orchestrator {claim.previous_owner} stopped while {was.status.value} "
            f"(attempt {claim.attempt})",
        )

    def _run(self, running: RunningJob) -> None:
        key = running.checked.request.key
        assert running.reporter is not None
        try:
            final = run_job(
                running.checked, self.models, running.reporter, self.codec_threads, self.name, running.masks
            )
            log.info("job %s %s%s", key, final.status.value, f": {final.error}" if final.error else "")
        except Exception:
            log.exception("job %s: could not be run", key)
        finally:
            if running.stop.stopped_for(StopReason.LEASE_LOST):  # hand it back, unless another run has it
                with self._lock:
                    self._releases[running.claim.fence] = _queued_again(
                        running.latest, f"queued again: orchestrator {self.name} lost its lease"
                    )
            with self._lock:
                self._running.pop(key, None)
            running.slot.free.release()
            self._wake.set()

    def _on_status(self, running: RunningJob, status: VideoEditStatus) -> None:
        """Every status a running job publishes (recorded in the store and status.json already):
        the stage metrics, the job's callback (stage changes and the end only, not every frame),
        and the watchers of this process woken."""
        if status.status is not running.latest.status:
            self.metrics.moved(running.latest, running.stage_entered_at, status)
            running.stage_entered_at = status.updated_at or time.time()
            # A stage is called back only while the job is ours (a run that lost its lease may still
            # report one); an end or a hand-back reaches here once recorded in the store.
            if status.status.terminal or status.status is JobStatus.QUEUED or running.claim.holds():
                self.webhooks.job_status(running.checked.request, status)
        running.latest = status
        self._on_status_changed()

    def _end_unrun(
        self, claim: HeldClaim, request: VideoEditRequest, was: VideoEditStatus, end: JobStatus, **fields
    ) -> bool:
        """End a claimed job without running it (cancelled while queued, no longer valid, nowhere
        to write): recorded in the store first, then (where it can be written) status.json.
        Returns False: nothing runs."""
        final = dataclasses.replace(was, status=end, updated_at=time.time(), **fields)
        if not claim.finish(final, lambda: None):
            return False
        remove_scratch(final.output_dir)  # what earlier attempts left to resume from
        try:
            write_status(final.output_dir, final)
        except OSError as err:
            log.warning("job %s: status.json not written (%s); the job store has its end", final.key, err)
        self.metrics.job_ended(final)
        log.info("job %s %s without running: %s", final.key, end.value, final.error or final.message)
        self.webhooks.job_status(request, final)
        self._on_status_changed()
        return False

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
            for key in jobs:  # the process that wrote their scratch is gone: the next attempt resumes from it
                job = self.store.get(key)
                release_scratch(job.status.output_dir if job is not None else None)
            if jobs:
                log.info(
                    "re-queued %d job(s) left unfinished by %s, an earlier orchestrator on this machine "
                    "that stopped: %s",
                    len(jobs),
                    owner,
                    ", ".join(jobs),
                )


def _queued_again(status: VideoEditStatus, message: str) -> VideoEditStatus:
    """`status` back in the queue, from the start."""
    return dataclasses.replace(
        status,
        status=JobStatus.QUEUED,
        progress=0.0,
        current_frame=None,
        total_frames=None,
        updated_at=time.time(),
        message=message,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
