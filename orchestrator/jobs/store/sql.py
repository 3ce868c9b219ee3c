"""The JobStore in SQL, written once for SQLite and PostgreSQL; each subclass supplies its
connection, its transactions and the few words the two dialects spell differently.

Tables: `jobs` (one row per job: request and latest status as JSON, plus the columns the
queue needs: state, owner, lease_until, cancel_requested, version, attempts, retry_at) and
`job_events` (the status on entering each stage, so a watcher on any orchestrator sees every
stage, however briefly it lasted). `schema_version` numbers the migrations below; a store
applies the missing ones when it opens, and refuses a database newer than itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ...request import JobStatus, Mode, VideoEditRequest, VideoEditStatus
from .base import Claim, Fence, JobStoreError, Lease, StoredJob

_ENDED = tuple(s.value for s in JobStatus if s.terminal)
_ENDED_SQL = ", ".join(f"'{s}'" for s in _ENDED)
# Migrations may rewrite every row and wait for another orchestrator's migration: far longer
# than a call may take.
MIGRATION_DEADLINE_S = 600.0
# The claim that `?, ?, ?` (job_id, owner, attempt) names still holds the job.
_HELD = "job_id = ? AND owner = ? AND attempts = ?"
# Job ids per statement of `versions`.
VERSIONS_BATCH = 1000


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
    ]


def _dump(value: Any) -> str:
    return json.dumps(value.to_dict(), ensure_ascii=False)


def _status(text: str) -> VideoEditStatus:
    return VideoEditStatus.from_dict(json.loads(text))


class SqlJobStore:
    """Shared logic; see sqlite.py and postgres.py. Queries use `?` placeholders."""

    now_sql: str  # the database's clock, unix seconds (leases are judged by one clock)
    json_state_sql: str  # the `status` field of the `status` JSON column
    claim_lock_sql = ""  # appended to the claim's SELECT (PostgreSQL: skip rows others are claiming)
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
                "INSERT INTO jobs (job_id, request, status, created_at, state, quick) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
                (
                    request.job_id,
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
        existing = self.get(request.job_id)
        assert existing is not None  # jobs are never deleted
        return existing

    def get(self, job_id: str) -> StoredJob | None:
        with self.transaction() as db:
            row = self._run(
                db, "SELECT request, status, version, owner FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        if row is None:
            return None
        return StoredJob(VideoEditRequest.from_dict(json.loads(row[0])), _status(row[1]), row[2], row[3])

    def versions(self, job_ids: Collection[str]) -> dict[str, int]:
        ids = list(job_ids)
        found: dict[str, int] = {}
        with self.transaction() as db:
            # In slices: SQLite takes at most 32766 parameters in one statement.
            for start in range(0, len(ids), VERSIONS_BATCH):
                batch = ids[start : start + VERSIONS_BATCH]
                marks = ", ".join("?" * len(batch))
                rows = self._run(db, f"SELECT job_id, version FROM jobs WHERE job_id IN ({marks})", batch)
                found.update(rows.fetchall())
        return found

    def list(self, status: JobStatus | None, limit: int, offset: int) -> list[VideoEditStatus]:
        where, params = ("WHERE state = ?", [status.value]) if status is not None else ("", [])
        with self.transaction() as db:
            rows = self._run(
                db,
                f"SELECT status FROM jobs {where} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_status(r[0]) for r in rows]

    def counts(self) -> dict[JobStatus, int]:
        with self.transaction() as db:
            rows = self._run(db, "SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
        found = {JobStatus(state): n for state, n in rows}
        return {s: found.get(s, 0) for s in JobStatus}

    def transitions(self, job_id: str, after_version: int, up_to_version: int) -> list[VideoEditStatus]:
        with self.transaction() as db:
            rows = self._run(
                db,
                "SELECT status FROM job_events WHERE job_id = ? AND version > ? AND version <= ? ORDER BY version",
                (job_id, after_version, up_to_version),
            ).fetchall()
        return [_status(r[0]) for r in rows]

    def claim(self, owner: str, lease_s: float, previews_only: bool = False) -> Claim | None:
        with self.transaction() as db:
            row = self._run(
                db,
                f"SELECT job_id, owner FROM jobs WHERE state NOT IN ({_ENDED_SQL}) "
                f"{'AND quick = 1 ' if previews_only else ''}"
                f"AND (owner IS NULL OR lease_until < {self.now_sql}) "
                f"AND (retry_at IS NULL OR retry_at <= {self.now_sql}) "
                f"ORDER BY created_at, job_id LIMIT 1{self.claim_lock_sql}",
            ).fetchone()
            if row is None:
                return None
            job_id, previous_owner = row
            row = self._run(
                db,
                f"UPDATE jobs SET owner = ?, lease_until = {self.now_sql} + ?, "
                "attempts = attempts + 1, retry_at = NULL WHERE job_id = ? "
                "RETURNING request, status, version, attempts, cancel_requested",
                (owner, lease_s, job_id),
            ).fetchone()
        job = StoredJob(VideoEditRequest.from_dict(json.loads(row[0])), _status(row[1]), row[2], owner)
        return Claim(job, attempt=row[3], previous_owner=previous_owner, cancel_requested=bool(row[4]))

    def renew(self, fences: Sequence[Fence], lease_s: float) -> list[Lease]:
        if not fences:
            return []
        # Owner and attempt match: the claim still holds the job, which has not ended (ending it
        # clears the owner). An expired lease nobody took over is extended too.
        held = " OR ".join(f"({_HELD})" for _ in fences)
        with self.transaction() as db:
            rows = self._run(
                db,
                f"UPDATE jobs SET lease_until = {self.now_sql} + ? WHERE {held} RETURNING job_id, cancel_requested",
                (lease_s, *(v for f in fences for v in (f.job_id, f.owner, f.attempt))),
            ).fetchall()
        return [Lease(job_id, bool(cancel)) for job_id, cancel in rows]

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
        if status.job_id != fence.job_id:
            raise ValueError(f"a status of job {status.job_id!r} under a claim of job {fence.job_id!r}")
        held = _HELD + (f" AND lease_until >= {self.now_sql}" if lease_running else "")
        hand_back, retry = "", ()
        if retry_after_s is not None:
            hand_back, retry = f", owner = NULL, lease_until = NULL, retry_at = {self.now_sql} + ?", (retry_after_s,)
        row = self._run(
            db,
            f"UPDATE jobs SET status = ?, state = ?, version = version + 1{hand_back} WHERE {held} RETURNING version",
            (_dump(status), status.status.value, *retry, fence.job_id, fence.owner, fence.attempt),
        ).fetchone()
        if row is not None and new_stage:
            self._event(db, status, row[0])
        return row is not None

    def _event(self, db: Any, status: VideoEditStatus, version: int) -> None:
        """Keep `status`, written as `version`, for watchers on any orchestrator (transitions)."""
        self._run(
            db,
            "INSERT INTO job_events (job_id, version, status) VALUES (?, ?, ?)",
            (status.job_id, version, _dump(status)),
        )

    def cancel_queued(self, status: VideoEditStatus) -> bool:
        with self.transaction() as db:
            row = self._run(
                db,
                "UPDATE jobs SET status = ?, state = ?, version = version + 1 "
                "WHERE job_id = ? AND state = 'queued' AND owner IS NULL RETURNING version",
                (_dump(status), status.status.value, status.job_id),
            ).fetchone()
            if row is not None:
                self._event(db, status, row[0])
        return row is not None

    def request_cancel(self, job_id: str) -> None:
        with self.transaction() as db:
            self._run(
                db, f"UPDATE jobs SET cancel_requested = 1 WHERE job_id = ? AND state NOT IN ({_ENDED_SQL})", (job_id,)
            )

    def owners(self) -> set[str]:
        with self.transaction() as db:
            rows = self._run(db, "SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def expire(self, owner: str) -> list[str]:
        with self.transaction() as db:
            rows = self._run(
                db, "UPDATE jobs SET lease_until = 0 WHERE owner = ? RETURNING job_id", (owner,)
            ).fetchall()
        return sorted(r[0] for r in rows)
