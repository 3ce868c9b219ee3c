"""The service's jobs as the RPCs see them: accepted into the job store, looked up, cancelled,
listed (watched: watchers.py); shared with any other orchestrator on the same store.

The store (jobs/store/) is the one source of truth; this process keeps only the jobs it is
running, and those are the JobWorker's (worker.py: the claim loop, the worker threads, leases,
hand-backs). An orchestrator that died (crash, SIGKILL) leaves leases that expire; its jobs then
run again from the start on whichever orchestrator claims them, or at once on its own restart on
the same machine. While the job store cannot be reached, RPCs answer UNAVAILABLE within its call
deadline, watch streams wait a blip out (watchers.py), and health says NOT_SERVING (worker.Conditions).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from ..models import Models
from ..request import JobStatus, VideoEditRequest, VideoEditStatus
from .metrics import JobMetrics
from .reuse import check_masks_from
from .runner import describe_error, new_status
from .status_file import STATUS_FILE, read_status, write_status
from .store import JobStore
from .validation import check_job_id, check_request
from .webhooks import SharedSecret, WebhookSecrets, WebhookSender
from .worker import JobWorker, orchestrator_id

log = logging.getLogger(__name__)


class JobManager:
    """What the RPCs call for jobs (start, get, cancel, list), over the job store, and the
    JobWorker that claims and runs them. One per orchestrator process."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        store: JobStore,
        max_concurrent_jobs: int = 1,
        max_queued_jobs: int = 100,
        metrics: JobMetrics | None = None,
        name: str | None = None,
        webhook_secrets: WebhookSecrets | None = None,
    ):
        self.settings = settings
        self.models = models
        self.store = store
        self.name = name or orchestrator_id()
        self.metrics = metrics or JobMetrics(lambda: self.worker.counts)
        self.max_queued_jobs = max_queued_jobs
        # Told of every status this process writes (the watch hub polls the store at once).
        self.on_change: Callable[[], None] = lambda: None
        # Callbacks (extra.callback_url) signed with `webhook_secrets` (None: VIDEOEDIT_WEBHOOK_SECRET
        # for every tenant); tenants' own secrets come as another WebhookSecrets.
        self.webhooks = WebhookSender.from_settings(
            settings, webhook_secrets or SharedSecret.from_settings(settings), self.metrics
        )
        self.worker = JobWorker(
            settings, models, store, self.metrics, self.name, max_concurrent_jobs, self._notify, self.webhooks
        )
        self.conditions = self.worker.conditions

    # --- what the RPCs call ---

    def start(self, request: VideoEditRequest) -> VideoEditStatus:
        checked = check_request(request, self.settings)
        check_masks_from(checked, self.store)
        self.webhooks.check(checked)
        req = checked.request
        if self.worker.stopping:
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
            try:  # the original worker's status.json exists once StartEdit returns
                write_status(req.output_dir, status)
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise ResourceExhausted(describe_error(err, req.output_dir)) from None
                raise
            try:
                existing = self.store.add(req, status)
            except BaseException:
                (req.output_dir / STATUS_FILE).unlink(missing_ok=True)  # nothing stored: nothing to show
                raise
            if existing is None:
                self.worker.wake()
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
                self.webhooks.job_status(stored.request, cancelled)
                self._notify()
                return cancelled
        # Claimed: its owner (this or another orchestrator) stops it at once (its StopSignal).
        self.store.request_cancel(job_id)
        self.worker.cancel(job_id)
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

    @property
    def stopping(self) -> bool:
        return self.worker.stopping

    def begin_shutdown(self) -> None:
        """Refuse new jobs and claim none; running ones stop at once (to go back to the queue)."""
        self.worker.begin_shutdown()

    def shutdown(self) -> None:
        """begin_shutdown, then wait for the running jobs to be handed back to the queue, for
        another orchestrator (or this one's next start); then the webhooks still pending get a short
        grace (their statuses "queued again" included) and the rest are dropped."""
        self.worker.shutdown()
        self.webhooks.close()

    def close(self) -> None:
        """After shutdown: close the store and the models (the calls the stopped jobs left in
        flight are cancelled, and waited for)."""
        self.store.close()
        self.models.close()

    def _notify(self) -> None:
        self.on_change()
