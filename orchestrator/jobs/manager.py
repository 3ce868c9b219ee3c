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
from .quotas import check_quotas
from .reuse import check_masks_from
from .runner import describe_error, new_status
from .status_file import STATUS_FILE, read_status, write_status
from .store import JobStore, StoredJob
from .tenants import DEFAULT_TENANT, OWNER, Caller, TenantPaths
from .validation import check_job_name, check_request
from .webhooks import TenantSecrets, WebhookSecrets, WebhookSender
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
        self.metrics = metrics or JobMetrics(lambda: self.worker.counts, lambda: self.worker.tenant_counts)
        self.max_queued_jobs = max_queued_jobs
        # Told of every status this process writes (the watch hub polls the store at once).
        self.on_change: Callable[[], None] = lambda: None
        # Callbacks (extra.callback_url) signed with `webhook_secrets` (None: each tenant's key
        # derived from VIDEOEDIT_WEBHOOK_SECRET).
        self.webhooks = WebhookSender.from_settings(
            settings, webhook_secrets or TenantSecrets.from_settings(settings), self.metrics
        )
        self.worker = JobWorker(
            settings, models, store, self.metrics, self.name, max_concurrent_jobs, self._notify, self.webhooks
        )
        self.conditions = self.worker.conditions

    # --- what the RPCs call ---

    def start(self, request: VideoEditRequest, caller: Caller = OWNER) -> VideoEditStatus:
        request = dataclasses.replace(request, tenant=caller.tenant)  # never the client's to choose
        checked = check_request(request, self.settings, self.paths(caller))
        check_masks_from(checked, self.store)
        self.webhooks.check(checked)
        req = checked.request
        if self.worker.stopping:
            raise Unavailable("the server is shutting down; retry on another replica or after the restart")
        existing = self.store.get(req.key)
        if existing is None:
            if read_status(req.output_dir) is not None:
                raise AlreadyExists(
                    f"job {req.job_id!r} already ran into {req.output_dir}; pick another job_id or output_dir"
                )
            check_quotas(self.store, checked, caller)  # new jobs only: a repeat returns the job as it is
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
                log.info("job %s queued for %s: %s -> %s", req.key, caller, req.input_video_path, req.output_dir)
                return status
        if existing.request == req:
            return existing.status  # StartEdit is idempotent per job_id, on any orchestrator
        raise AlreadyExists(f"job {req.job_id!r} exists with a different request; pick another job_id")

    def paths(self, caller: Caller) -> TenantPaths:
        """Where `caller`'s jobs may read and write."""
        allowed = self.store.tenant_settings(caller.tenant) if caller.tenant and not caller.admin else None
        return TenantPaths.of(self.settings, caller, allowed)

    def upload_dir(self, caller: Caller) -> Path:
        """Where `caller`'s uploads land (no store read: the roots an admin allowed play no part)."""
        return TenantPaths.of(self.settings, caller).upload_dir

    def stored(self, job_id: str, caller: Caller = OWNER) -> StoredJob | None:
        """The job `caller` names `job_id`, if it may see it: another tenant's job is as missing."""
        check_job_name(job_id, caller)
        return self.store.get(caller.key_of(job_id))

    def get(self, job_id: str, caller: Caller = OWNER) -> VideoEditStatus:
        stored = self.stored(job_id, caller)
        if stored is not None:
            return stored.status
        # A job of another store, e.g. one of legacy_api: the default tenant's only, by its bare id.
        legacy = caller.sees(DEFAULT_TENANT) and "/" not in job_id
        status = read_status(self.settings.output_root / job_id) if legacy else None
        if status is None:
            raise NotFound(f"no job {job_id!r}")
        return status

    def input_path(self, job_id: str, caller: Caller = OWNER) -> Path | None:
        """The input video of a job in the store (None: a job only known by its status.json)."""
        stored = self.stored(job_id, caller)
        return None if stored is None else stored.request.input_video_path

    def cancel(self, job_id: str, caller: Caller = OWNER) -> VideoEditStatus:
        stored = self.stored(job_id, caller)
        if stored is None or stored.status.status.terminal:
            return self.get(job_id, caller)  # finished jobs stay finished; jobs of other stores are not ours
        key = stored.request.key
        if stored.status.status is JobStatus.QUEUED:
            cancelled = dataclasses.replace(
                stored.status, status=JobStatus.CANCELLED, updated_at=time.time(), message="cancelled before it started"
            )
            if self.store.cancel_queued(cancelled):
                write_status(cancelled.output_dir, cancelled)
                self.metrics.job_ended(cancelled)
                self.webhooks.job_status(stored.request, cancelled)
                self._notify()
                log.info("job %s cancelled by %s before it started", key, caller)
                return cancelled
        # Claimed: its owner (this or another orchestrator) stops it at once (its StopSignal).
        self.store.request_cancel(key)
        self.worker.cancel(key)
        log.info("job %s: %s asked to cancel it", key, caller)
        return self.get(job_id, caller)

    def list(
        self, status: JobStatus | None, page_size: int, page_token: str, caller: Caller = OWNER
    ) -> tuple[list[VideoEditStatus], str]:
        """The jobs `caller` sees (an admin: every tenant's), newest first."""
        if page_size < 0 or page_size > 1000:
            raise InvalidArgument("page_size", f"{page_size} is out of range [0, 1000]")
        try:
            offset = int(page_token or 0)
            if offset < 0:
                raise ValueError
        except ValueError:
            raise InvalidArgument("page_token", f"{page_token!r} is not a token this server gave out") from None
        size = page_size or 50
        page = self.store.list(status, size + 1, offset, caller.scope)
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
