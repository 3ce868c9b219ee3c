"""The JobStore in SQL, written once for SQLite and PostgreSQL; each subclass supplies its
connection, its transactions and the few words the two dialects spell differently.

Tables: `jobs` (one row per job, named by its key, tenant/job_id: request and latest status as
JSON, plus the columns the queue needs: tenant, state, owner, lease_until, cancel_requested,
version, attempts, retry_at), `job_events` (the status on entering each stage, so a watcher on
any orchestrator sees every stage, however briefly it lasted), `api_keys` (the tenants' keys,
hashed) and `tenants` (each tenant's quotas and place in the claims' round robin).
`schema_version` numbers the migrations below; a store
applies the missing ones when it opens, and refuses a database newer than itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from ...request import JobStatus, Mode, VideoEditRequest, VideoEditStatus
from ..tenants import ApiKey, TenantSettings
from .base import Claim, Fence, JobStoreError, Lease, StoredJob

_ENDED = tuple(s.value for s in JobStatus if s.terminal)
_ENDED_SQL = ", ".join(f"'{s}'" for s in _ENDED)
# The states of jobs not ended, named (not NOT IN the ended ones): a count of one tenant's such jobs
# then reads only those in the index jobs_by_tenant (tenant, state), not its whole history.
_LIVE_SQL = ", ".join(f"'{s.value}'" for s in JobStatus if not s.terminal)
# Migrations may rewrite every row and wait for another orchestrator's migration: far longer
# than a call may take.
MIGRATION_DEADLINE_S = 600.0
# The claim that `?, ?, ?` (job key, owner, attempt) names still holds the job.
_HELD = "job_key = ? AND owner = ? AND attempts = ?"
# Job keys per statement of `versions`.
VERSIONS_BATCH = 1000
# Tries of one claim whose tenant another orchestrator filled meanwhile (PostgreSQL; see _claim).
CLAIM_TRIES = 3


class _TenantAtLimit(Exception):
    """A claim found its tenant's max_running reached once it held the tenant's row: roll it back."""


def _migrations(json_state: str) -> list[list[str]]:
    """Schema versions 1.. as lists of statements. `json_state`: the dialect's expression for
    the `status` field of the `status` JSON column."""
    return [
        # 1: the first release's table (SQLite files made by it are upgraded from here).
        [
            """CREATE TABLE IF NOT EXISTS jobs (
                job_id     TEXT PRIMARY KEY,
                request    TEXT NOT NULL,  -- VideoEditRequest.to_dict() as JSON
                status     TEXT NOT NULL,  -- VideoEditStatus.to_dict() as JSON
                created_at DOUBLE PRECISION NOT NULL)"""
        ],
        # 2: a queue shared by several orchestrators (claims, leases, cancel flags, events).
        [
            "ALTER TABLE jobs ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'",
            "ALTER TABLE jobs ADD COLUMN owner TEXT",
            "ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION",
            "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            f"UPDATE jobs SET state = {json_state}",
            "CREATE INDEX jobs_by_state ON jobs (state, created_at)",
            """CREATE TABLE job_events (
                job_id  TEXT NOT NULL,
                version INTEGER NOT NULL,
                status  TEXT NOT NULL,
                PRIMARY KEY (job_id, version))""",
        ],
        # 3: jobs handed back to wait out an outage are not claimed before their retry time.
        ["ALTER TABLE jobs ADD COLUMN retry_at DOUBLE PRECISION"],
        # 4: one-frame jobs (previews), which workers of their own may claim.
        ["ALTER TABLE jobs ADD COLUMN quick INTEGER NOT NULL DEFAULT 0"],
        # 5: tenants. A job is named by tenant/job_id; the default tenant's keys are the bare job
        # ids, so every row made before stays what it was.
        [
            "ALTER TABLE jobs RENAME COLUMN job_id TO job_key",
            "ALTER TABLE job_events RENAME COLUMN job_id TO job_key",
            "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX jobs_by_tenant ON jobs (tenant, state, created_at)",
            """CREATE TABLE api_keys (
                key_id     TEXT PRIMARY KEY,  -- the key's public part (access.keys)
                tenant     TEXT NOT NULL,
                role       TEXT NOT NULL,     -- user or admin
                key_hash   TEXT NOT NULL,     -- SHA-256 of the whole key, hex
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)""",
            """CREATE TABLE tenants (
                tenant            TEXT PRIMARY KEY,
                max_queued        INTEGER,           -- NULL: no limit of its own
                max_running       INTEGER,
                max_video_seconds DOUBLE PRECISION,
                input_roots       TEXT,              -- JSON list of directories it may read besides its uploads
                -- claims' round robin: the tenant served longest ago goes first
                last_claim        BIGINT NOT NULL DEFAULT 0)""",
        ],
    ]


def _dump(value: Any) -> str:
    return json.dumps(value.to_dict(), ensure_ascii=False)


def _status(text: str) -> VideoEditStatus:
    return VideoEditStatus.from_dict(json.loads(text))


_TENANT_COLUMNS = "tenant, max_queued, max_running, max_video_seconds, input_roots"
# Tenants an admin set something for: set_tenant_settings always writes input_roots (a JSON list),
# a claim only last_claim (the rows of tenants that merely had jobs claimed keep it NULL).
_SET_BY_ADMIN = "input_roots IS NOT NULL"


def _tenant_settings(row: Sequence[Any]) -> TenantSettings:
    tenant, max_queued, max_running, max_video_seconds, roots = row
    paths = tuple(Path(p) for p in json.loads(roots or "[]"))
    return TenantSettings(tenant, max_queued, max_running, max_video_seconds, paths)


_KEY_COLUMNS = "key_id, tenant, role, created_at, revoked_at"  # never key_hash: api_keys' listing


def _where(*conditions: tuple[str, str | None]) -> tuple[str, list[str]]:
    """A WHERE clause of `column = ?` for each (column, value) whose value is not None."""
    used = [(column, value) for column, value in conditions if value is not None]
    clause = " AND ".join(f"{column} = ?" for column, _ in used)
    return (f"WHERE {clause}" if clause else ""), [value for _, value in used]


class SqlJobStore:
    """Shared logic; see sqlite.py and postgres.py. Queries use `?` placeholders."""

    now_sql: str  # the database's clock, unix seconds (leases are judged by one clock)
    json_state_sql: str  # the `status` field of the `status` JSON column
    claim_lock_sql = ""  # appended to the claim's SELECT (PostgreSQL: skip job rows others are claiming)
    migration_lock_sql: str | None = None  # serialises migrations of orchestrators starting together

    def transaction(self, deadline_s: float | None = None) -> AbstractContextManager[Any]:
        """A connection in a transaction, committed on success. `deadline_s`: how long the call
        may wait on the database (None: the store's limit for one call)."""
        raise NotImplementedError

    def outside_deadline(self) -> AbstractContextManager[None]:
        """Inside a transaction: time spent here (the caller's own work) does not count towards
        the call's deadline."""
        return nullcontext()

    def _sql(self, query: str) -> str:
        return query

    def _run(self, db: Any, query: str, params: Sequence[Any] = ()) -> Any:
        return db.execute(self._sql(query), tuple(params))

    # --- schema ---

    def migrate(self) -> int:
        """Apply the missing migrations; returns the schema version."""
        migrations = _migrations(self.json_state_sql)
        with self.transaction(MIGRATION_DEADLINE_S) as db:
            if self.migration_lock_sql:
                self._run(db, self.migration_lock_sql)
            self._run(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._run(db, "SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > len(migrations):
                raise JobStoreError(
                    f"the job database has schema version {current}, newer than this orchestrator "
                    f"knows ({len(migrations)}): upgrade the orchestrator"
                )
            for version in range(current + 1, len(migrations) + 1):
                for statement in migrations[version - 1]:
                    self._run(db, statement)
                self._run(db, "INSERT INTO schema_version (version) VALUES (?)", (version,))
        return len(migrations)

    # --- JobStore ---

    def add(self, request: VideoEditRequest, status: VideoEditStatus) -> StoredJob | None:
        with self.transaction() as db:
            added = self._run(
                db,
                "INSERT INTO jobs (job_key, tenant, request, status, created_at, state, quick) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_key) DO NOTHING RETURNING job_key",
                (
                    request.key,
                    request.tenant,
                    _dump(request),
                    _dump(status),
                    status.created_at or 0.0,
                    status.status.value,
                    int(request.mode == Mode.SINGLE_FRAME),
                ),
            ).fetchone()
            if added:
                self._event(db, status, 0)
                return None
        existing = self.get(request.key)
        assert existing is not None  # jobs are never deleted
        return existing

    def get(self, key: str) -> StoredJob | None:
        with self.transaction() as db:
            row = self._run(db, "SELECT request, status, version, owner FROM jobs WHERE job_key = ?", (key,)).fetchone()
        if row is None:
            return None
        return StoredJob(VideoEditRequest.from_dict(json.loads(row[0])), _status(row[1]), row[2], row[3])

    def versions(self, keys: Collection[str]) -> dict[str, int]:
        ids = list(keys)
        found: dict[str, int] = {}
        with self.transaction() as db:
            # In slices: SQLite takes at most 32766 parameters in one statement.
            for start in range(0, len(ids), VERSIONS_BATCH):
                batch = ids[start : start + VERSIONS_BATCH]
                marks = ", ".join("?" * len(batch))
                rows = self._run(db, f"SELECT job_key, version FROM jobs WHERE job_key IN ({marks})", batch)
                found.update(rows.fetchall())
        return found

    def list(
        self, status: JobStatus | None, limit: int, offset: int, tenant: str | None = None
    ) -> list[VideoEditStatus]:
        where, params = _where(("state", None if status is None else status.value), ("tenant", tenant))
        with self.transaction() as db:
            rows = self._run(
                db,
                f"SELECT status FROM jobs {where} ORDER BY created_at DESC, job_key LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_status(r[0]) for r in rows]

    def counts(self, tenant: str | None = None) -> dict[JobStatus, int]:
        where, params = _where(("tenant", tenant))
        with self.transaction() as db:
            rows = self._run(db, f"SELECT state, count(*) FROM jobs {where} GROUP BY state", params).fetchall()
        found = {JobStatus(state): n for state, n in rows}
        return {s: found.get(s, 0) for s in JobStatus}

    def counts_by_tenant(self) -> dict[str, dict[JobStatus, int]]:
        with self.transaction() as db:
            rows = self._run(
                db, f"SELECT tenant, state, count(*) FROM jobs WHERE state NOT IN ({_ENDED_SQL}) GROUP BY tenant, state"
            ).fetchall()
        found: dict[str, dict[JobStatus, int]] = {}
        for tenant, state, n in rows:
            found.setdefault(tenant, {})[JobStatus(state)] = n
        return found

    def transitions(self, key: str, after_version: int, up_to_version: int) -> list[VideoEditStatus]:
        with self.transaction() as db:
            rows = self._run(
                db,
                "SELECT status FROM job_events WHERE job_key = ? AND version > ? AND version <= ? ORDER BY version",
                (key, after_version, up_to_version),
            ).fetchall()
        return [_status(r[0]) for r in rows]

    def claim(self, owner: str, lease_s: float, previews_only: bool = False) -> Claim | None:
        for _ in range(CLAIM_TRIES):
            try:
                with self.transaction() as db:
                    return self._claim(db, owner, lease_s, previews_only)
            except _TenantAtLimit:
                continue  # another orchestrator took the tenant's last running slot meanwhile: look again
        return None

    def _claim(self, db: Any, owner: str, lease_s: float, previews_only: bool) -> Claim | None:
        """Fair claims: round robin over the tenants with claimable jobs (the tenant served longest
        ago first: lowest tenants.last_claim, none counting as 0), first come first served within
        one, and none for a tenant with max_running jobs running. Three statements, where one
        query cannot do it on PostgreSQL: the SELECT picks the job (SKIP LOCKED: it never waits
        on another claimer's job); the upsert gives the tenant its new place (max + 1) and takes
        its row's lock, so claims of one tenant take turns; the UPDATE then counts the tenant's
        running jobs again with what the previous claimer committed, so max_running holds exactly
        with concurrent claimers (raced: _TenantAtLimit rolls all back). SQLite's transaction holds
        the whole file (BEGIN IMMEDIATE): there the SELECT's count is already exact. Two claimers
        of different tenants may get the same place (both read one max): ties go by age."""
        row = self._run(db, self._claimable_sql(previews_only)).fetchone()
        if row is None:
            return None
        key, previous_owner, tenant = row
        (max_running,) = self._run(
            db,
            "INSERT INTO tenants (tenant, last_claim) "
            "VALUES (?, (SELECT coalesce(max(last_claim), 0) + 1 FROM tenants)) "
            "ON CONFLICT (tenant) DO UPDATE SET last_claim = excluded.last_claim RETURNING max_running",
            (tenant,),
        ).fetchone()
        below_limit, limit = "", ()
        if max_running is not None:
            below_limit, limit = (
                f" AND coalesce((SELECT n FROM ({self._running_sql('?')}) AS busy), 0) < ?",
                (
                    tenant,
                    max_running,
                ),
            )
        row = self._run(
            db,
            f"UPDATE jobs SET owner = ?, lease_until = {self.now_sql} + ?, "
            f"attempts = attempts + 1, retry_at = NULL WHERE job_key = ?{below_limit} "
            "RETURNING request, status, version, attempts, cancel_requested",
            (owner, lease_s, key, *limit),
        ).fetchone()
        if row is None:
            raise _TenantAtLimit
        job = StoredJob(VideoEditRequest.from_dict(json.loads(row[0])), _status(row[1]), row[2], owner)
        return Claim(job, attempt=row[3], previous_owner=previous_owner, cancel_requested=bool(row[4]))

    def _claimable_sql(self, previews_only: bool) -> str:
        """The next job to claim: queued and unowned, or its owner's lease expired; its retry time
        passed; its tenant below max_running; the tenant served longest ago first, then the oldest.
        The running jobs are counted once per tenant (a grouped subquery), not once per candidate
        job: with thousands queued, a count per row made each claim take seconds."""
        return (
            "SELECT jobs.job_key, jobs.owner, jobs.tenant FROM jobs "
            "LEFT JOIN tenants ON tenants.tenant = jobs.tenant "
            f"LEFT JOIN ({self._running_sql()} GROUP BY running.tenant) AS busy ON busy.tenant = jobs.tenant "
            f"WHERE jobs.state NOT IN ({_ENDED_SQL}) "
            f"{'AND jobs.quick = 1 ' if previews_only else ''}"
            f"AND (jobs.owner IS NULL OR jobs.lease_until < {self.now_sql}) "
            f"AND (jobs.retry_at IS NULL OR jobs.retry_at <= {self.now_sql}) "
            "AND (tenants.max_running IS NULL OR tenants.max_running > coalesce(busy.n, 0)) "
            f"ORDER BY coalesce(tenants.last_claim, 0), jobs.created_at, jobs.job_key LIMIT 1{self.claim_lock_sql}"
        )

    def _running_sql(self, tenant: str | None = None) -> str:
        """`n`, the jobs that run (claimed, with a live lease, not ended), with their `tenant`: of the
        tenant `tenant` names (an SQL expression), or of every tenant (to be grouped)."""
        return (
            "SELECT running.tenant AS tenant, count(*) AS n FROM jobs AS running WHERE running.owner IS NOT NULL "
            f"AND running.lease_until >= {self.now_sql} AND running.state IN ({_LIVE_SQL})"
            + (f" AND running.tenant = {tenant} GROUP BY running.tenant" if tenant is not None else "")
        )

    def renew(self, fences: Sequence[Fence], lease_s: float) -> list[Lease]:
        if not fences:
            return []
        # Owner and attempt match: the claim still holds the job, which has not ended (ending it
        # clears the owner). An expired lease nobody took over is extended too.
        held = " OR ".join(f"({_HELD})" for _ in fences)
        with self.transaction() as db:
            rows = self._run(
                db,
                f"UPDATE jobs SET lease_until = {self.now_sql} + ? WHERE {held} RETURNING job_key, cancel_requested",
                (lease_s, *(v for f in fences for v in (f.key, f.owner, f.attempt))),
            ).fetchall()
        return [Lease(key, bool(cancel)) for key, cancel in rows]

    def update(self, status: VideoEditStatus, fence: Fence, new_stage: bool) -> bool:
        if status.status.terminal:
            raise ValueError(f"{status.status.value} ends the job: use finish()")
        with self.transaction() as db:
            return self._write(db, status, fence, new_stage, lease_running=True)

    def finish(self, status: VideoEditStatus, fence: Fence, commit: Callable[[], None] = lambda: None) -> bool:
        if not status.status.terminal:
            raise ValueError(f"{status.status.value} does not end the job: use update() or release()")
        with self.transaction() as db:
            # The UPDATE keeps the row locked until the commit: nobody takes the job over meanwhile.
            if not self._write(db, status, fence, new_stage=True, lease_running=True, retry_after_s=0.0):
                return False
            with self.outside_deadline():
                commit()  # if it raises, the transaction rolls back
        return True

    def release(self, status: VideoEditStatus, fence: Fence, retry_after_s: float = 0.0) -> bool:
        if status.status is not JobStatus.QUEUED:
            raise ValueError(f"a job goes back to the queue as queued, not {status.status.value}")
        with self.transaction() as db:
            return self._write(db, status, fence, new_stage=True, lease_running=False, retry_after_s=retry_after_s)

    def _write(
        self,
        db: Any,
        status: VideoEditStatus,
        fence: Fence,
        new_stage: bool,
        lease_running: bool,
        retry_after_s: float | None = None,
    ) -> bool:
        """Write `status` if `fence` holds the job (`lease_running`: and its lease has not
        expired). `retry_after_s`: also hand the job back, unowned and claimable again that many
        seconds from now. `new_stage`: keep the status for watchers (job_events)."""
        if status.key != fence.key:
            raise ValueError(f"a status of job {status.key!r} under a claim of job {fence.key!r}")
        held = _HELD + (f" AND lease_until >= {self.now_sql}" if lease_running else "")
        hand_back, retry = "", ()
        if retry_after_s is not None:
            hand_back, retry = f", owner = NULL, lease_until = NULL, retry_at = {self.now_sql} + ?", (retry_after_s,)
        row = self._run(
            db,
            f"UPDATE jobs SET status = ?, state = ?, version = version + 1{hand_back} WHERE {held} RETURNING version",
            (_dump(status), status.status.value, *retry, fence.key, fence.owner, fence.attempt),
        ).fetchone()
        if row is not None and new_stage:
            self._event(db, status, row[0])
        return row is not None

    def _event(self, db: Any, status: VideoEditStatus, version: int) -> None:
        """Keep `status`, written as `version`, for watchers on any orchestrator (transitions)."""
        self._run(
            db,
            "INSERT INTO job_events (job_key, version, status) VALUES (?, ?, ?)",
            (status.key, version, _dump(status)),
        )

    def cancel_queued(self, status: VideoEditStatus) -> bool:
        with self.transaction() as db:
            row = self._run(
                db,
                "UPDATE jobs SET status = ?, state = ?, version = version + 1 "
                "WHERE job_key = ? AND state = 'queued' AND owner IS NULL RETURNING version",
                (_dump(status), status.status.value, status.key),
            ).fetchone()
            if row is not None:
                self._event(db, status, row[0])
        return row is not None

    def request_cancel(self, key: str) -> None:
        with self.transaction() as db:
            self._run(
                db, f"UPDATE jobs SET cancel_requested = 1 WHERE job_key = ? AND state NOT IN ({_ENDED_SQL})", (key,)
            )

    def tenant_settings(self, tenant: str) -> TenantSettings | None:
        with self.transaction() as db:
            row = self._run(
                db, f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE tenant = ? AND {_SET_BY_ADMIN}", (tenant,)
            ).fetchone()
        return None if row is None else _tenant_settings(row)

    def set_tenant_settings(self, settings: TenantSettings) -> None:
        values = (
            settings.tenant,
            settings.max_queued,
            settings.max_running,
            settings.max_video_seconds,
            json.dumps([str(p) for p in settings.input_roots]),
        )
        with self.transaction() as db:
            self._run(
                db,
                f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET "
                "max_queued = excluded.max_queued, max_running = excluded.max_running, "
                "max_video_seconds = excluded.max_video_seconds, input_roots = excluded.input_roots",
                values,
            )

    def all_tenant_settings(self) -> list[TenantSettings]:
        with self.transaction() as db:
            rows = self._run(
                db, f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE {_SET_BY_ADMIN} ORDER BY tenant"
            ).fetchall()
        return [_tenant_settings(r) for r in rows]

    # --- API keys ---

    def add_key(self, key: ApiKey, key_hash: str) -> None:
        with self.transaction() as db:
            self._run(
                db,
                f"INSERT INTO api_keys ({_KEY_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?)",
                (key.key_id, key.tenant, key.role, key.created_at, key.revoked_at, key_hash),
            )

    def active_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        with self.transaction() as db:
            row = self._run(
                db,
                f"SELECT {_KEY_COLUMNS}, key_hash FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        return None if row is None else (ApiKey(*row[:-1]), row[-1])

    def keys(self, tenant: str | None = None) -> list[ApiKey]:
        where, params = _where(("tenant", tenant))
        with self.transaction() as db:
            rows = self._run(
                db, f"SELECT {_KEY_COLUMNS} FROM api_keys {where} ORDER BY tenant, created_at, key_id", params
            ).fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke_keys(self, key_id: str | None = None, tenant: str | None = None) -> int:
        if key_id is None and tenant is None:
            raise ValueError("revoke_keys needs a key_id or a tenant")  # never every key by mistake
        where, params = _where(("key_id", key_id), ("tenant", tenant))
        with self.transaction() as db:
            rows = self._run(
                db,
                f"UPDATE api_keys SET revoked_at = {self.now_sql} {where} AND revoked_at IS NULL RETURNING key_id",
                params,
            ).fetchall()
        return len(rows)

    def has_keys(self) -> bool:
        with self.transaction() as db:
            return self._run(db, "SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def owners(self) -> set[str]:
        with self.transaction() as db:
            rows = self._run(db, "SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def expire(self, owner: str) -> list[str]:
        with self.transaction() as db:
            rows = self._run(
                db, "UPDATE jobs SET lease_until = 0 WHERE owner = ? RETURNING job_key", (owner,)
            ).fetchall()
        return sorted(r[0] for r in rows)
