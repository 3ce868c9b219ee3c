"""Where jobs live: the JobStore contract and its SQLite (one machine) and PostgreSQL
(shared by many orchestrators) implementations."""

from __future__ import annotations

from ...config import Settings
from .base import Claim, Fence, JobStore, JobStoreError, Lease, StoredJob
from .sqlite import SqliteJobStore

__all__ = ["Claim", "Fence", "JobStore", "JobStoreError", "Lease", "StoredJob", "SqliteJobStore", "open_store"]


def open_store(settings: Settings) -> JobStore:
    """The store VIDEOEDIT_JOB_DB names: a postgresql:// URL, else a SQLite file."""
    if settings.job_db_url:
        from .postgres import PostgresJobStore  # psycopg only where PostgreSQL is used

        return PostgresJobStore(settings.job_db_url)
    return SqliteJobStore(settings.job_db_path)
