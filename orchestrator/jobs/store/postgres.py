"""The shared job store: PostgreSQL (VIDEOEDIT_JOB_DB=postgresql://...), for any number of
orchestrators on any number of machines. Claims skip rows another orchestrator is claiming
(FOR UPDATE SKIP LOCKED); leases are judged by the database's clock, not the machines'."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import Unavailable
from .base import JobStoreError
from .sql import SqlJobStore

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10
# RPC threads (watchers poll, StartEdit writes) and job threads share this many connections.
POOL_SIZE = 16
_MIGRATION_LOCK = 0x76696465  # any constant: orchestrators starting together migrate one at a time


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def describe(url: str) -> str:
    """Where a URL points, without its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparseable URL"
    where = parts.get("host") or "localhost"
    return f"{parts.get('user', '')}@{where}:{parts.get('port', 5432)}/{parts.get('dbname', '')}".lstrip("@")


class PostgresJobStore(SqlJobStore):
    """The JobStore in a PostgreSQL database that any number of orchestrators share: a pool of
    connections for the RPC and job threads, the schema migrated on start (one orchestrator at a
    time), and claims that skip rows another orchestrator is claiming. Refuses to start
    (JobStoreError) when the database cannot be used."""

    now_sql = "extract(epoch from clock_timestamp())::double precision"
    json_state_sql = "(status::json ->> 'status')"
    claim_lock_sql = " FOR UPDATE SKIP LOCKED"
    migration_lock_sql = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"

    def __init__(self, url: str):
        self.description = f"PostgreSQL {describe(url)}"
        try:  # one plain connection first: its error says why (a pool's timeout would not)
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as err:
            raise JobStoreError(
                f"cannot use the job database {self.description} (VIDEOEDIT_JOB_DB): {_first_line(err)}"
            ) from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=True,
            name="videoedit-jobs",
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        version = self.migrate()
        log.info("job store: %s (schema version %d)", self.description, version)

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        try:
            with self._pool.connection() as db, db.transaction():
                yield db
        except (psycopg.OperationalError, PoolTimeout) as err:  # the database went away: retry later
            raise Unavailable(
                f"the job database {self.description} cannot be reached ({_first_line(err)}); retry shortly"
            ) from err

    def close(self) -> None:
        self._pool.close()
