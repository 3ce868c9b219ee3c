"""Where the service keeps its jobs, so they outlive the process: the JobStore contract and
its SQLite implementation.

One row per job: the checked request (to re-run it) and its latest status. `status.json` in
each output dir stays the seed's per-job record; the store is what lets a restarted
orchestrator list old jobs, and re-queue the ones it was running or had queued.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from ..request import VideoEditRequest, VideoEditStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id     TEXT PRIMARY KEY,
    request    TEXT NOT NULL,   -- VideoEditRequest.to_dict() as JSON
    status     TEXT NOT NULL,   -- VideoEditStatus.to_dict() as JSON
    created_at REAL NOT NULL
)
"""


class JobStore(Protocol):
    """What the job manager needs from a store (called from RPC and job threads)."""

    def add(self, request: VideoEditRequest, status: VideoEditStatus) -> None: ...

    def update(self, status: VideoEditStatus) -> None: ...

    def load(self) -> list[tuple[VideoEditRequest, VideoEditStatus]]:
        """Every job, oldest first."""
        ...

    def close(self) -> None: ...


class SqliteJobStore:
    """One SQLite file (WAL), one connection shared under a lock."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # one connection shared by RPC and job threads
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; crash-safe
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def add(self, request: VideoEditRequest, status: VideoEditStatus) -> None:
        with self._lock:
            self._db.execute("INSERT INTO jobs (job_id, request, status, created_at) VALUES (?, ?, ?, ?)",
                             (request.job_id, json.dumps(request.to_dict()), json.dumps(status.to_dict()),
                              status.created_at or 0.0))

    def update(self, status: VideoEditStatus) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET status = ? WHERE job_id = ?",
                             (json.dumps(status.to_dict()), status.job_id))

    def load(self) -> list[tuple[VideoEditRequest, VideoEditStatus]]:
        """Every job, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT request, status FROM jobs ORDER BY created_at").fetchall()
        return [(VideoEditRequest.from_dict(json.loads(r)), VideoEditStatus.from_dict(json.loads(s)))
                for r, s in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
