"""The embedded job store: one SQLite file (WAL) on the orchestrator's disk. The default for
one machine; orchestrators on other machines cannot share it (use PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .sql import SqlJobStore


class SqliteJobStore(SqlJobStore):
    """One connection shared under a lock by RPC and job threads; writers of other processes
    on the same file wait for each other (BEGIN IMMEDIATE, busy timeout)."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    json_state_sql = "json_extract(status, '$.status')"

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.description = f"SQLite {path}"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; crash-safe
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self.migrate()

    @contextmanager
    def transaction(self, deadline_s: float | None = None) -> Iterator[sqlite3.Connection]:
        # No deadline: the file is local (a writer of another process waits up to the busy timeout).
        with self._lock:
            # IMMEDIATE takes the write lock up front: a claim's SELECT and UPDATE are one step.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
