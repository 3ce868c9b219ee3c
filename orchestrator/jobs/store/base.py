"""The JobStore contract: what orchestrators share about jobs, and how they share the work.

A store is the one source of truth for every job's request and latest status. Orchestrators
(one, or many sharing a database) never run a job they have not *claimed*: a claim makes the
orchestrator the job's owner for a lease of `lease_s` seconds, which it renews while the job
runs. A job whose owner stopped renewing (crash, SIGKILL, lost network) can be claimed by
anyone once the lease has expired, and runs again from the start. Every write a running job
makes carries its claim's Fence (job, owner, attempt): the store takes it only while that claim
still holds the job, so an orchestrator that lost its lease cannot overwrite the new run, and a
job ends (status written, outputs renamed into place) in one transaction with that check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ...request import JobStatus, VideoEditRequest, VideoEditStatus
from ..tenants import ApiKey, TenantSettings


class JobStoreError(RuntimeError):
    """The job store cannot be used (unreachable, refused, bad URL, newer schema): the
    orchestrator must not start serving."""


@dataclass(frozen=True)
class StoredJob:
    """One job as the store holds it: its request, its latest status and who runs it."""

    request: VideoEditRequest
    status: VideoEditStatus
    version: int  # +1 on every status write: watchers compare it to see a change
    owner: str | None = None  # the orchestrator holding the job's lease, if any


@dataclass(frozen=True)
class Fence:
    """One claim of one job: who holds it and which attempt (the claim's number, `attempts` after
    the claim). Every write a running job makes carries it; the store takes the write only while
    that claim still holds the job."""

    key: str  # the job's (request.key: tenant/job_id)
    owner: str
    attempt: int


@dataclass(frozen=True)
class Claim:
    """A queued (or abandoned) job this orchestrator has just taken, with a fresh lease on it."""

    job: StoredJob
    attempt: int  # 1 for the first run of the job
    previous_owner: str | None  # set when the job is taken over from an orchestrator whose lease expired
    cancel_requested: bool

    @property
    def fence(self) -> Fence:
        """What this claim's writes carry."""
        assert self.job.owner is not None  # a claimed job has its owner
        return Fence(self.job.request.key, self.job.owner, self.attempt)


@dataclass(frozen=True)
class Lease:
    """A renewed lease, and whether someone asked (on any orchestrator) to cancel its job."""

    key: str  # the job's (request.key)
    cancel_requested: bool


class JobStore(Protocol):
    """Called from RPC threads and job threads of one orchestrator, and shared between
    orchestrators where the implementation allows (PostgreSQL). A job is named by its key,
    `request.key` (tenant/job_id: job ids are unique per tenant); `tenant` arguments limit what
    is seen to one tenant's jobs (None: every tenant's, for admins and the service's own counts)."""

    description: str  # what and where, for the logs (no passwords)

    def add(self, request: VideoEditRequest, status: VideoEditStatus) -> StoredJob | None:
        """Store a new job; if `request.key` is taken, store nothing and return that job."""
        ...

    def get(self, key: str) -> StoredJob | None: ...

    def versions(self, keys: Collection[str]) -> dict[str, int]:
        """The status version of each of these jobs that exists, in one read (the watch hub
        polls every watched job with it)."""
        ...

    def list(
        self, status: JobStatus | None, limit: int, offset: int, tenant: str | None = None
    ) -> list[VideoEditStatus]:
        """Newest first."""
        ...

    def counts(self, tenant: str | None = None) -> dict[JobStatus, int]:
        """How many jobs are in each state (queue depth: QUEUED)."""
        ...

    def counts_by_tenant(self) -> dict[str, dict[JobStatus, int]]:
        """How many jobs that have not ended each tenant with any has, in each state (metrics)."""
        ...

    def transitions(self, key: str, after_version: int, up_to_version: int) -> list[VideoEditStatus]:
        """The status on entering each stage, for writes after `after_version` up to and
        including `up_to_version`, oldest first."""
        ...

    def claim(self, owner: str, lease_s: float, previews_only: bool = False) -> Claim | None:
        """Take a job that is queued and unowned, or whose owner's lease has expired; jobs whose
        retry time (release's `retry_after_s`) is still in the future are skipped. Fair between
        tenants: round robin over the tenants with such jobs (the tenant served longest ago first),
        the oldest job of that tenant; none of a tenant whose max_running jobs run (claimed, lease
        live, not ended), on any orchestrator. `previews_only`: only one-frame jobs (mode
        single_frame), for a preview worker."""
        ...

    def renew(self, fences: Sequence[Fence], lease_s: float) -> list[Lease]:
        """Extend the leases of these claims only (same owner and attempt, job not ended); the
        claims that no longer hold their job are missing from the answer. No fences: no query."""
        ...

    def update(self, status: VideoEditStatus, fence: Fence, new_stage: bool) -> bool:
        """A running job's (non-terminal) status from its claim, written only while the claim
        holds the job and its lease has not expired (by the database's clock); `new_stage`: also
        kept for watchers elsewhere (transitions). False: nothing written."""
        ...

    def finish(self, status: VideoEditStatus, fence: Fence, commit: Callable[[], None] = lambda: None) -> bool:
        """End the job with a terminal `status`, in one transaction: check that `fence` still
        holds an unexpired lease (the row stays locked), write the status, release the job, call
        `commit()` (the caller renames its outputs into place there; keep it short) and commit.
        False: not held; nothing written and `commit` not called. If `commit` raises, nothing is
        written and the error is raised."""
        ...

    def release(self, status: VideoEditStatus, fence: Fence, retry_after_s: float = 0.0) -> bool:
        """Hand the job back to the queue with a QUEUED `status` (interrupted by a shutdown, or
        waiting out a model-server outage): unowned, and not claimable before `retry_after_s`
        from now (the database's clock). Needs the claim to hold the job but not an unexpired
        lease (a job stopped after its lease ran out goes back if nobody took it). False: not
        held, nothing written."""
        ...

    def cancel_queued(self, status: VideoEditStatus) -> bool:
        """Write a CANCELLED status if the job is still queued and unclaimed."""
        ...

    def request_cancel(self, key: str) -> None:
        """Flag a claimed job for cancelling; its owner sees the flag when it renews."""
        ...

    def owners(self) -> set[str]:
        """Every orchestrator holding a lease."""
        ...

    def expire(self, owner: str) -> list[str]:
        """End `owner`'s leases now (it is known to be dead); returns its jobs' keys."""
        ...

    # --- tenants (jobs.tenants) ---

    def tenant_settings(self, tenant: str) -> TenantSettings | None:
        """What an admin set for `tenant` (None: nothing, no limits of its own)."""
        ...

    def set_tenant_settings(self, settings: TenantSettings) -> None:
        """Store `settings` for its tenant, replacing what was set before."""
        ...

    def all_tenant_settings(self) -> list[TenantSettings]:
        """Every tenant an admin set something for, by name."""
        ...

    # --- API keys (videoedit-admin keys; api.security.KeyAuthenticator) ---

    def add_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key (`key_hash`: videoedit.v1.auth.api_key_hash of the whole key; the key
        itself is never stored). A taken key id raises."""
        ...

    def active_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key `key_id` and its stored hash, unless it is unknown or revoked. Read on every
        call that presents a key: a revocation takes effect at once on every orchestrator."""
        ...

    def keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of `tenant` only, if given), revoked ones too, by tenant and age."""
        ...

    def revoke_keys(self, key_id: str | None = None, tenant: str | None = None) -> int:
        """Revoke the active key `key_id`, or every active key of `tenant` (at least one must be
        given); returns how many were revoked."""
        ...

    def has_keys(self) -> bool:
        """Whether any key was ever made (revoked ones count: revoking every key must not open
        the service to everyone)."""
        ...

    def close(self) -> None: ...
