"""Who calls, and what of the service that caller may see and use.

Every call comes from a Caller: a tenant (the team or user an API key was made for) and whether
the key is an admin's. A tenant sees only its own jobs: another tenant's job answers NOT_FOUND
exactly as a missing one does. Job ids are unique per tenant, so the job store names a job by its
key, `tenant/job_id` (request.job_key). An admin sees every job and names another tenant's as
`tenant/job_id`. The default tenant "" is that of one-user setups: no auth, or the single
VIDEOEDIT_AUTH_TOKEN, which is an admin key.

A tenant's files: uploads land in `<upload dir>/tenants/<tenant>/` and its jobs write by default
into `<output root>/tenants/<tenant>/<job_id>/` (TenantPaths); a tenant's job may read only its
own uploads and the input roots an admin allowed it (TenantSettings.input_roots).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import InvalidArgument
from ..request import job_key

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_TENANT = ""


def check_tenant(name: str, field: str = "tenant") -> str:
    """A tenant name as keys and quotas are made for (never the default tenant "")."""
    if not TENANT_PATTERN.fullmatch(name):
        raise InvalidArgument(
            field, f"{name[:80]!r} must be 1-63 characters of a-z 0-9 _ -, starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Caller:
    """Who made a call: the tenant its key belongs to, and whether it is an admin's key.
    `key_id`: the key's public id (None: the VIDEOEDIT_AUTH_TOKEN or no auth at all)."""

    tenant: str
    admin: bool = False
    key_id: str | None = None

    def key_of(self, job_id: str) -> str:
        """The store key of the job a call names: the caller's own job, or for an admin also
        `tenant/job_id`, another tenant's (a job id never holds "/": a user's such name finds nothing)."""
        tenant, slash, own = job_id.rpartition("/")
        if self.admin and slash:
            return job_key(tenant, own)
        return job_key(self.tenant, job_id)

    def sees(self, tenant: str) -> bool:
        """Whether this caller may see a job of `tenant`."""
        return self.admin or tenant == self.tenant

    @property
    def scope(self) -> str | None:
        """The tenant whose jobs a listing shows (None: every tenant's, for an admin)."""
        return None if self.admin else self.tenant

    def __str__(self) -> str:  # for logs: never the key itself
        who = self.tenant or "default tenant"
        return f"{who} ({'admin' if self.admin else 'user'}{f', key {self.key_id}' if self.key_id else ''})"


# One-user setups (no auth, or VIDEOEDIT_AUTH_TOKEN) and the in-process API.
OWNER = Caller(DEFAULT_TENANT, admin=True)


@dataclass(frozen=True)
class TenantSettings:
    """What an admin set for one tenant (`videoedit-admin quota set`, `tenant set`); None: no limit."""

    tenant: str
    max_queued: int | None = None
    max_running: int | None = None
    max_video_seconds: float | None = None
    input_roots: tuple[Path, ...] = ()  # directories it may read besides its own uploads


ROLES = ("user", "admin")  # an API key's role: a tenant's user, or an admin of every tenant


@dataclass(frozen=True)
class ApiKey:
    """An API key as the store lists it (`videoedit-admin keys ...`): its public id, never its
    secret or hash. `revoked_at`: when it was revoked (None: active); times are unix seconds."""

    key_id: str
    tenant: str
    role: str  # one of ROLES
    created_at: float
    revoked_at: float | None = None

    @property
    def caller(self) -> Caller:
        """Who a call with this key is."""
        return Caller(self.tenant, admin=self.role == "admin", key_id=self.key_id)


TENANTS_DIR = "tenants"  # under the upload dir and the output root: one folder per tenant


@dataclass(frozen=True)
class TenantPaths:
    """Where a caller's jobs may read and write. `jobs_dir`: where a job writes when the request
    names no output_dir (<jobs_dir>/<job_id>); `output_root`: where an output_dir may lie."""

    upload_dir: Path
    input_roots: tuple[Path, ...]
    jobs_dir: Path
    output_root: Path

    @classmethod
    def of(cls, settings: Settings, caller: Caller, allowed: TenantSettings | None = None) -> TenantPaths:
        """An admin reads every input root and writes anywhere in the output root; a user reads its
        uploads and the roots allowed to it, and writes into its own folder only."""
        if not caller.tenant:
            return cls(settings.upload_path, settings.input_roots, settings.output_root, settings.output_root)
        uploads = settings.upload_path / TENANTS_DIR / caller.tenant
        jobs_dir = settings.output_root / TENANTS_DIR / caller.tenant
        if caller.admin:
            return cls(uploads, settings.input_roots, jobs_dir, settings.output_root)
        roots = (uploads, *(allowed.input_roots if allowed is not None else ()))
        return cls(uploads, roots, jobs_dir, jobs_dir)
