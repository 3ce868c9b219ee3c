"""The shared job store: PostgreSQL (VIDEOEDIT_JOB_DB=postgresql://...), for any number of
orchestrators on any number of machines. Claims skip rows another orchestrator is claiming
(FOR UPDATE SKIP LOCKED); leases are judged by the database's clock, not the machines'.

Every call returns, or raises Unavailable, within CALL_DEADLINE_S (far less than a lease), so
an orchestrator cut off from the database finds out while its leases still run, whatever the
network does. Each way a call can wait has its limit:
- for a connection from the pool: the pool's timeout; for a new one (made by the pool's own
  threads): connect_timeout;
- on a server that answers, but slowly or after a lock: the server's statement_timeout and
  lock_timeout (set per connection, in `options`);
- on a connection gone quiet: a watchdog (_Deadlines) shuts the socket down at the call's
  deadline, so the read (or write) libpq is blocked in fails at once; the broken connection is
  closed, and the pool replaces it. Nothing else ends that wait when the kernel still
  acknowledges what is sent (a user-space proxy or load balancer whose far side is gone):
  keepalives and tcp_user_timeout see a healthy peer there. They do serve where packets are
  dropped, for connections idle in the pool too.
On the server, idle_in_transaction_session_timeout ends the session of a client that vanished
in mid-transaction, releasing the rows it locked (a job being finished). The caller's commit()
in finish() does not count towards the deadline, but must end within IDLE_IN_TRANSACTION_S.
A call that failed at its deadline may still take effect: what it sent before the network went
quiet arrives when the network heals (the COMMIT of a finish() too); read the job to know.

After an outage, the store works again as soon as the database does, without a restart:
- a connection is checked (an empty query) before it serves a call: after a restart of the
  server the pool's connections are dead, and a failed check replaces them all (drain), so the
  call gets a new one instead of failing;
- the pool's own reconnection gives up after 2 deadlines (reconnect_timeout; by default it would
  retry for 5 minutes, further and further apart, during which calls would still fail) and the
  next call asks for a new connection at once.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import Unavailable
from .base import JobStoreError
from .sql import SqlJobStore

log = logging.getLogger(__name__)
# The longest a store call may wait on the database.
CALL_DEADLINE_S = 2.0
# The longest a transaction may sit idle on the server (its rows locked: finish() runs the caller's
# commit() inside it) before the server ends the session: bounds how long a client that vanished
# in mid-transaction keeps its job from being taken over.
IDLE_IN_TRANSACTION_S = 10.0
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


def connection_settings(url: str) -> dict[str, Any]:
    """The libpq settings every connection of the store adds to `url`'s (see the module's doc)."""
    deadline_ms = round(CALL_DEADLINE_S * 1000)
    server = (
        f"-c statement_timeout={deadline_ms} -c lock_timeout={deadline_ms} "
        f"-c idle_in_transaction_session_timeout={round(IDLE_IN_TRANSACTION_S * 1000)}"
    )
    given = conninfo_to_dict(url).get("options")
    return {
        "connect_timeout": max(2, math.ceil(CALL_DEADLINE_S)),  # whole seconds, at least 2 (libpq)
        "options": f"{given} {server}" if given else server,
        # A peer that stopped answering (packets dropped): unacknowledged data fails the
        # connection after the deadline, an idle one is probed.
        "tcp_user_timeout": deadline_ms,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }


class _Call:
    """One store call: its deadline (time.monotonic()), and whether the watchdog ended it."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self.deadline = time.monotonic() + limit_s
        self.expired = False

    def left(self) -> float:
        return self.deadline - time.monotonic()


class _Deadlines:
    """The watchdog: one thread that shuts down the socket of every connection still in use by a
    call past its deadline. libpq's blocked read or write then fails at once (OperationalError),
    and the connection, broken, is closed and replaced by the pool."""

    def __init__(self, name: str):
        self._state = threading.Condition()
        self._watched: dict[socket.socket, _Call] = {}
        self._wakes_at = math.inf
        self._stopped = False
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)
        self._thread.start()

    @contextmanager
    def watching(self, conn: psycopg.Connection, call: _Call) -> Iterator[None]:
        """`conn` serves `call` meanwhile; if the watchdog ended the call, `conn` is closed after."""
        # A duplicate of libpq's socket: shutting it down still reaches this connection after libpq
        # closed its own descriptor (whose number may be another socket's by then).
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        with self._state:
            self._watched[sock] = call
            self._wake(call.deadline)
        try:
            yield
        finally:
            with self._state:
                self._watched.pop(sock, None)
            sock.close()
            if call.expired:
                conn.close()  # whatever state it is in: the pool discards it

    @contextmanager
    def paused(self, call: _Call) -> Iterator[None]:
        """Time spent here does not count towards `call`'s deadline."""
        with self._state:
            left, call.deadline = call.left(), math.inf
        try:
            yield
        finally:
            with self._state:
                call.deadline = time.monotonic() + left
                self._wake(call.deadline)

    def stop(self) -> None:
        with self._state:
            self._stopped = True
            self._state.notify()
        self._thread.join()

    def _wake(self, deadline: float) -> None:
        if deadline < self._wakes_at:
            self._state.notify()

    def _watch(self) -> None:
        with self._state:
            while not self._stopped:
                now = time.monotonic()
                for sock, call in list(self._watched.items()):
                    if call.deadline <= now:
                        del self._watched[sock]
                        call.expired = True
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:  # closed by the server meanwhile
                            pass
                self._wakes_at = min((call.deadline for call in self._watched.values()), default=math.inf)
                self._state.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


class PostgresJobStore(SqlJobStore):
    """The JobStore in a PostgreSQL database that any number of orchestrators share: a pool of
    connections for the RPC and job threads, the schema migrated on start (one orchestrator at a
    time), and claims that skip rows another orchestrator is claiming. Refuses to start
    (JobStoreError) when the database cannot be used; afterwards a call that cannot be served
    within CALL_DEADLINE_S raises Unavailable."""

    now_sql = "extract(epoch from clock_timestamp())::double precision"
    json_state_sql = "(status::json ->> 'status')"
    claim_lock_sql = " FOR UPDATE OF jobs SKIP LOCKED"  # not the tenants row it joins
    migration_lock_sql = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"

    def __init__(self, url: str):
        self.description = f"PostgreSQL {describe(url)}"
        settings = connection_settings(url)
        try:  # one plain connection first: its error says why (a pool's timeout would not)
            psycopg.connect(url, **settings).close()
        except psycopg.Error as err:
            raise JobStoreError(
                f"cannot use the job database {self.description} (VIDEOEDIT_JOB_DB): {_first_line(err)}"
            ) from None
        self._calls = threading.local()  # .current: the call this thread is in (the pool's check runs in it)
        self._deadlines = _Deadlines("job-db-deadlines")
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=True,
            name="videoedit-jobs",
            kwargs=settings,
            timeout=CALL_DEADLINE_S,
            check=self._check,
            reconnect_timeout=2 * CALL_DEADLINE_S,
        )
        version = self.migrate()
        log.info("job store: %s (schema version %d)", self.description, version)

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    @contextmanager
    def transaction(self, deadline_s: float | None = None) -> Iterator[psycopg.Connection]:
        call = self._calls.current = _Call(deadline_s or CALL_DEADLINE_S)
        try:
            with self._pool.connection(timeout=call.left()) as db:
                with self._deadlines.watching(db, call), db.transaction():
                    if deadline_s is not None:  # the server's limits follow the call's
                        limit = str(round(deadline_s * 1000))
                        db.execute(
                            "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                            (limit, limit),
                        )
                    yield db
        except (psycopg.OperationalError, PoolTimeout) as err:  # the database went away: retry later
            why = f"no answer within {call.limit_s:g} s" if call.expired else _first_line(err)
            raise Unavailable(f"the job database {self.description} cannot be reached ({why}); retry shortly") from err
        finally:
            self._calls.current = None

    def outside_deadline(self) -> AbstractContextManager[None]:
        return self._deadlines.paused(self._calls.current)

    def _check(self, conn: psycopg.Connection) -> None:
        """The pool's check of a connection before it serves a call, within the call's deadline."""
        call = getattr(self._calls, "current", None) or _Call(CALL_DEADLINE_S)
        try:
            with self._deadlines.watching(conn, call):
                ConnectionPool.check_connection(conn)
        except Exception:
            # Dead: so are the others made before it, most likely (the server restarted). Replace
            # them all now, instead of failing on them one by one.
            self._pool.drain()
            raise

    def close(self) -> None:
        self._pool.close()
        self._deadlines.stop()
