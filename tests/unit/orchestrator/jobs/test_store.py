"""The job store's contract, on both implementations: SQLite (a file) and PostgreSQL (a real
server from the `postgres` fixture). Claims, leases, fenced writes (a stale claim writes
nothing), ending a job with its commit in one transaction, hand-backs and retry times, cancel
flags, stage events, migrations of an old SQLite file, and refusing a database newer than the code.
PostgreSQL under faults: behind a proxy that partitions the network (tests/proxy.py) every call
fails within the deadline, and the store recovers once the partition heals; a lock held elsewhere
costs no more than the deadline; after a restart of the server the first call succeeds."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from orchestrator.errors import Unavailable
from orchestrator.jobs.store import Claim, Fence, JobStore, JobStoreError, Lease, SqliteJobStore
from orchestrator.jobs.store.postgres import CALL_DEADLINE_S, PostgresJobStore, describe
from orchestrator.jobs.store.sql import SqlJobStore
from orchestrator.jobs.tenants import TenantSettings
from orchestrator.request import JobStatus, Mode, VideoEditRequest, VideoEditStatus
from tests.proxy import Proxy

# How long a call may take to fail when the database does not answer (the deadline, and then some
# for a loaded machine).
FAILS_WITHIN_S = 3 * CALL_DEADLINE_S


@pytest.fixture(params=["sqlite", "postgresql"])
def reopen(request, tmp_path) -> Callable[[], SqlJobStore]:
    """Opens one job database (each time anew) of both kinds in turn."""
    if request.param == "sqlite":
        return lambda: SqliteJobStore(tmp_path / "jobs.sqlite3")
    url = request.getfixturevalue("postgres").database("store")
    return lambda: PostgresJobStore(url)


@pytest.fixture
def store(reopen):
    opened = reopen()
    yield opened
    opened.close()


def job(job_id: str, created_at: float = 0.0) -> tuple[VideoEditRequest, VideoEditStatus]:
    request = VideoEditRequest(
        input_video_path=Path("/media/clip.mp4"),
        mask_prompt="car",
        edit_prompt="red",
        job_id=job_id,
        output_dir=Path("/out") / job_id,
    )
    status = VideoEditStatus(
        job_id=job_id,
        status=JobStatus.QUEUED,
        message="queued",
        output_dir=request.output_dir,
        created_at=created_at or time.time(),
        updated_at=time.time(),
    )
    return request, status


def moved(status: VideoEditStatus, stage: JobStatus, **fields) -> VideoEditStatus:
    return dataclasses.replace(status, status=stage, updated_at=time.time(), **fields)


def claim_within(store: JobStore, owner: str, timeout_s: float = 10.0) -> Claim:
    """The first job `owner` can claim (polling: a lease or a retry time is running out)."""
    deadline = time.monotonic() + timeout_s
    while (claim := store.claim(owner, 30)) is None:
        assert time.monotonic() < deadline, f"{owner} claimed nothing within {timeout_s} s"
        time.sleep(0.05)
    return claim


def test_add_is_idempotent_and_keeps_the_first_request(store):
    request, status = job("a")
    assert store.add(request, status) is None
    other = dataclasses.replace(request, edit_prompt="blue")
    existing = store.add(other, status)
    assert existing is not None and existing.request == request and existing.status == status
    assert store.get("a").request == request and store.get("missing") is None


def test_claims_take_the_oldest_queued_job_once(store):
    for i, job_id in enumerate(("old", "new")):
        store.add(*job(job_id, created_at=1000.0 + i))
    first, second = store.claim("A", 30), store.claim("B", 30)
    assert (first.job.request.job_id, second.job.request.job_id) == ("old", "new")
    assert first.attempt == 1 and first.previous_owner is None and store.claim("C", 30) is None
    assert store.owners() == {"A", "B"}


def test_a_preview_worker_claims_only_one_frame_jobs(store):
    store.add(*job("video", created_at=1000.0))
    request, status = job("preview", created_at=1001.0)
    store.add(dataclasses.replace(request, mode=Mode.SINGLE_FRAME), status)
    assert store.claim("A", 30, previews_only=True).job.request.job_id == "preview"  # past the older one
    assert store.claim("B", 30, previews_only=True) is None
    assert store.claim("C", 30).job.request.job_id == "video"


def test_concurrent_claims_never_hand_out_a_job_twice(store):
    for i in range(20):
        store.add(*job(f"j{i:02d}", created_at=1000.0 + i))
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(owner: str) -> None:
        while (claim := store.claim(owner, 30)) is not None:
            with lock:
                claimed.append(claim.job.request.job_id)

    threads = [threading.Thread(target=claimer, args=(f"o{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == [f"j{i:02d}" for i in range(20)]


def test_only_the_claim_writes_and_an_expired_lease_is_taken_over(store):
    request, status = job("a")
    store.add(request, status)
    a = store.claim("A", lease_s=0.3).fence
    assert store.update(moved(status, JobStatus.EDITING), a, new_stage=True)
    assert not store.update(moved(status, JobStatus.SAVING), Fence("a", "B", a.attempt), new_stage=True)  # not B's
    assert store.claim("B", 30) is None  # A's lease still runs
    taken = claim_within(store, "B")
    assert taken.previous_owner == "A" and taken.attempt == 2 and taken.job.status.status is JobStatus.EDITING
    assert taken.fence == Fence("a", "B", 2)
    assert not store.update(moved(status, JobStatus.SAVING), a, new_stage=True)  # A lost it
    assert store.renew([taken.fence], 30) == [Lease("a", False)] and store.renew([a], 30) == []


def test_a_stale_attempt_of_the_same_owner_writes_nothing(store):
    """The same orchestrator claimed the job again (its lease had expired): the first run's
    writes, carrying the older attempt, are refused; only the new claim's count."""
    request, status = job("a")
    store.add(request, status)
    stale = store.claim("A", 30).fence
    store.expire("A")
    held = store.claim("A", 30).fence
    assert (stale.owner, stale.attempt, held.owner, held.attempt) == ("A", 1, "A", 2)
    commits: list[int] = []
    assert not store.update(moved(status, JobStatus.EDITING), stale, new_stage=True)
    assert not store.finish(moved(status, JobStatus.FINISHED), stale, commit=lambda: commits.append(1))
    assert not store.release(moved(status, JobStatus.QUEUED), stale)
    assert commits == [] and store.get("a").owner == "A" and store.get("a").status == status
    assert store.renew([stale, held], 30) == [Lease("a", False)]
    assert store.update(moved(status, JobStatus.EDITING), held, new_stage=True)


def test_an_expired_lease_writes_nothing_but_still_hands_the_job_back(store):
    """Nobody took the job over after its lease ran out: the claim may no longer write its
    status or end the job, but it may give the job back to the queue."""
    request, status = job("a")
    store.add(request, status)
    claim = store.claim("A", 30)
    store.expire("A")
    commits: list[int] = []
    assert not store.update(moved(status, JobStatus.EDITING), claim.fence, new_stage=True)
    assert not store.finish(moved(status, JobStatus.FINISHED), claim.fence, commit=lambda: commits.append(1))
    assert commits == [] and store.get("a").status == status
    version = store.get("a").version
    interrupted = moved(status, JobStatus.QUEUED, message="interrupted by a server shutdown")
    assert store.release(interrupted, claim.fence)
    stored = store.get("a")
    assert stored.owner is None and stored.status == interrupted and stored.version == version + 1
    again = store.claim("B", 30)
    assert again.previous_owner is None and again.attempt == 2


def test_a_released_job_is_unowned_and_claimable_at_once(store):
    request, status = job("a")
    store.add(request, status)
    claim = store.claim("A", 30)
    interrupted = moved(status, JobStatus.QUEUED, message="interrupted by a server shutdown")
    assert store.release(interrupted, claim.fence)
    assert store.owners() == set() and not store.release(interrupted, claim.fence)  # handed back once
    again = store.claim("B", 30)
    assert again.previous_owner is None and again.attempt == 2


def test_a_job_handed_back_to_wait_is_not_claimed_before_its_retry_time(store):
    store.add(*job("waits", created_at=1000.0))
    store.add(*job("later", created_at=2000.0))
    claim = store.claim("A", 30)
    waiting = moved(claim.job.status, JobStatus.QUEUED, message="waiting for the model servers")
    assert store.release(waiting, claim.fence, retry_after_s=0.5)
    released = time.monotonic()
    assert store.claim("B", 30).job.request.job_id == "later"  # the older job waits out its retry time
    assert store.claim("B", 30) is None
    again = claim_within(store, "B")
    assert again.job.request.job_id == "waits" and again.attempt == 2 and again.previous_owner is None
    assert time.monotonic() - released > 0.4  # the database's clock and this one differ by little


def test_finish_ends_the_job_and_its_commit_in_one_transaction(store):
    request, status = job("a")
    store.add(request, status)
    claim = store.claim("A", 30)
    before = store.get("a")
    finished = moved(status, JobStatus.FINISHED, progress=1.0)

    def fails() -> None:
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space left"):
        store.finish(finished, claim.fence, commit=fails)
    assert store.get("a") == before and store.transitions("a", 0, 99) == []  # rolled back: still A's, running
    commits: list[int] = []
    assert store.finish(finished, claim.fence, commit=lambda: commits.append(1))
    stored = store.get("a")
    assert commits == [1] and stored.status == finished and stored.owner is None and store.owners() == set()
    assert store.transitions("a", before.version, stored.version) == [finished]
    assert not store.finish(finished, claim.fence, commit=lambda: commits.append(2)) and commits == [1]
    assert store.renew([claim.fence], 30) == [] and store.claim("B", 30) is None


def test_renew_extends_only_the_claims_it_is_given(store):
    """A job this orchestrator stopped without handing it back is no longer renewed: its lease
    runs out and another orchestrator takes it."""
    for i, job_id in enumerate(("kept", "stopped")):
        store.add(*job(job_id, created_at=1000.0 + i))
    kept = store.claim("A", 30).fence
    stopped = store.claim("A", 0.3).fence
    deadline = time.monotonic() + 10
    while (taken := store.claim("B", 30)) is None:
        assert store.renew([kept], 30) == [Lease("kept", False)] and time.monotonic() < deadline
        time.sleep(0.05)
    assert taken.job.request.job_id == "stopped" and taken.previous_owner == "A"
    assert store.renew([kept, stopped], 30) == [Lease("kept", False)]
    store.close()
    assert store.renew([], 30) == []  # no claims: no query (the store is closed)


def test_writes_refuse_a_status_of_the_wrong_kind(store):
    request, status = job("a")
    store.add(request, status)
    fence = store.claim("A", 30).fence
    with pytest.raises(ValueError, match="use finish"):
        store.update(moved(status, JobStatus.FINISHED), fence, new_stage=True)
    with pytest.raises(ValueError, match="does not end the job"):
        store.finish(moved(status, JobStatus.EDITING), fence)
    with pytest.raises(ValueError, match="back to the queue as queued"):
        store.release(moved(status, JobStatus.EDITING), fence)
    with pytest.raises(ValueError, match="under a claim of job 'b'"):
        store.update(moved(status, JobStatus.EDITING), Fence("b", "A", 1), new_stage=True)


def test_cancel_flags_reach_the_owner_and_cancel_queued_only_when_unclaimed(store):
    for job_id in ("queued", "claimed"):
        store.add(*job(job_id, created_at=2000.0 if job_id == "queued" else 1000.0))
    claim = store.claim("A", 30)
    assert claim.job.request.job_id == "claimed"
    cancelled = moved(claim.job.status, JobStatus.CANCELLED)
    assert not store.cancel_queued(cancelled)  # claimed: its owner must stop it
    store.request_cancel("claimed")
    assert store.renew([claim.fence], 30) == [Lease("claimed", True)]
    assert store.cancel_queued(moved(store.get("queued").status, JobStatus.CANCELLED))
    assert store.get("queued").status.status is JobStatus.CANCELLED and store.claim("B", 30) is None


def test_transitions_keep_every_stage_for_watchers_elsewhere(store):
    request, status = job("a")
    store.add(request, status)
    fence = store.claim("A", 30).fence
    start = store.get("a").version
    for stage in (JobStatus.EXTRACTING, JobStatus.MASKING):
        assert store.update(moved(status, stage), fence, new_stage=True)
        assert store.update(moved(status, stage, progress=0.1), fence, new_stage=False)  # progress: no event
    latest = store.get("a").version
    seen = store.transitions("a", after_version=start, up_to_version=latest)
    assert [s.status for s in seen] == [JobStatus.EXTRACTING, JobStatus.MASKING]
    assert store.transitions("a", after_version=start, up_to_version=latest - 2) == seen[:1]


def test_versions_read_many_jobs_at_once_and_skip_unknown_ones(store):
    ids = [f"j{i}" for i in range(2500)]  # more than one batch of the IN list
    for job_id in ids:
        store.add(*job(job_id))
    fence = store.claim("A", 30).fence
    assert store.update(moved(store.get(fence.key).status, JobStatus.EXTRACTING), fence, new_stage=True)
    versions = store.versions([*ids, "unknown"])
    assert len(versions) == 2500 and "unknown" not in versions and store.versions([]) == {}
    assert versions[fence.key] == store.get(fence.key).version and versions[fence.key] > versions["j1"]


def test_counts_and_pages(store):
    for i in range(5):
        store.add(*job(f"j{i}", created_at=1000.0 + i))
    assert store.finish(moved(store.get("j0").status, JobStatus.FINISHED), store.claim("A", 30).fence)
    counts = store.counts()
    assert counts[JobStatus.QUEUED] == 4 and counts[JobStatus.FINISHED] == 1 and counts[JobStatus.EDITING] == 0
    assert [s.job_id for s in store.list(None, 2, 0)] == ["j4", "j3"]
    assert [s.job_id for s in store.list(JobStatus.QUEUED, 10, 2)] == ["j2", "j1"]


def test_expire_ends_a_dead_owners_leases_now(store):
    store.add(*job("a"))
    store.claim("dead", 3600)
    assert store.expire("dead") == ["a"]
    assert store.claim("B", 30).previous_owner == "dead"


def test_an_old_sqlite_file_is_migrated_and_keeps_its_jobs(tmp_path):
    """A job store written by the first release (schema 1: no queue columns)."""
    path = tmp_path / "old.sqlite3"
    request, status = job("old")
    finished = moved(status, JobStatus.FINISHED)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, request TEXT NOT NULL, status TEXT NOT NULL, "
            "created_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?)",
            ("old", json.dumps(request.to_dict()), json.dumps(finished.to_dict()), 1.0),
        )
    store = SqliteJobStore(path)
    try:
        assert store.get("old").status == finished
        assert store.counts()[JobStatus.FINISHED] == 1 and store.claim("A", 30) is None
    finally:
        store.close()


def test_a_database_of_schema_2_is_migrated_and_keeps_its_jobs(reopen):
    """Schema 2 (the release before retry times), on both kinds of database."""
    store = reopen()
    store.add(*job("a"))
    with store.transaction() as db:
        db.execute("DROP INDEX jobs_by_tenant")  # undo schema 5 (tenants) ...
        db.execute("ALTER TABLE jobs DROP COLUMN tenant")
        db.execute("ALTER TABLE jobs RENAME COLUMN job_key TO job_id")
        db.execute("ALTER TABLE job_events RENAME COLUMN job_key TO job_id")
        db.execute("DROP TABLE api_keys")
        db.execute("DROP TABLE tenants")
        db.execute("ALTER TABLE jobs DROP COLUMN retry_at")  # ... 4 and 3
        db.execute("ALTER TABLE jobs DROP COLUMN quick")
        db.execute("DELETE FROM schema_version WHERE version >= 3")
    store.close()
    store = reopen()
    try:
        claim = store.claim("A", 30)
        assert claim.job.request.job_id == "a" and store.release(claim.job.status, claim.fence, retry_after_s=3600)
        assert store.claim("B", 30) is None
    finally:
        store.close()


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    SqliteJobStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(JobStoreError, match="schema version 99, newer than this orchestrator"):
        SqliteJobStore(path)


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    with pytest.raises(JobStoreError) as caught:
        PostgresJobStore("postgresql://videoedit:s3cret@127.0.0.1:1/jobs")
    message = str(caught.value)
    assert "videoedit@127.0.0.1:1/jobs" in message and "VIDEOEDIT_JOB_DB" in message and "s3cret" not in message
    assert describe("postgresql://u:pw@db.example:6543/x") == "u@db.example:6543/x"


# --- PostgreSQL under faults ---


@pytest.fixture
def proxied(postgres):
    """A PostgreSQL store whose connections go through a proxy that can cut them, and the proxy."""
    with Proxy(postgres.socket_path) as proxy:
        store = PostgresJobStore(postgres.database("proxied", via=proxy.address))
        yield store, proxy
        proxy.heal()
        store.close()


def fail_in_time(calls: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Run `calls` all at once (as RPC and job threads would); each must raise Unavailable within
    FAILS_WITHIN_S. How long each took. (In threads of their own: one stuck fails the test, and is
    freed when the partition heals.)"""
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            call()
            error = None
        except BaseException as err:  # checked below
            error = err
        outcomes[name] = (time.monotonic() - started, error)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in calls.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + FAILS_WITHIN_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert set(outcomes) == set(calls), f"still waiting after {FAILS_WITHIN_S} s: {set(calls) - set(outcomes)}"
    for name, (_, error) in outcomes.items():
        assert isinstance(error, Unavailable) and "cannot be reached" in str(error), f"{name}: {error!r}"
    return {name: took for name, (took, _) in outcomes.items()}


def works_again(store: JobStore, timeout_s: float = 10.0) -> None:
    """Poll until `store` answers again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.counts()
            return
        except Unavailable:
            assert time.monotonic() < deadline, f"the store did not recover within {timeout_s} s"


def test_in_a_partition_every_call_fails_within_the_deadline_and_the_store_recovers(proxied):
    store, proxy = proxied
    for i, job_id in enumerate(("run", "queued")):
        store.add(*job(job_id, created_at=1000.0 + i))
    claim = store.claim("A", 30)
    fence, running, queued = claim.fence, claim.job.status, store.get("queued").status
    request, status = job("new")
    calls: dict[str, Callable[[], object]] = {
        "add": lambda: store.add(request, status),
        "get": lambda: store.get("run"),
        "list": lambda: store.list(None, 10, 0),
        "counts": store.counts,
        "transitions": lambda: store.transitions("run", 0, 9),
        "claim": lambda: store.claim("B", 30),
        "renew": lambda: store.renew([fence], 30),
        "update": lambda: store.update(moved(running, JobStatus.EDITING), fence, new_stage=True),
        "finish": lambda: store.finish(moved(running, JobStatus.FINISHED), fence),
        "release": lambda: store.release(moved(running, JobStatus.QUEUED), fence),
        "cancel_queued": lambda: store.cancel_queued(moved(queued, JobStatus.CANCELLED)),
        "request_cancel": lambda: store.request_cancel("run"),
        "owners": store.owners,
        "expire": lambda: store.expire("A"),
    }
    proxy.partition()
    fail_in_time({"counts": store.counts})  # alone: on the connection the pool holds, which goes quiet
    fail_in_time(calls)
    proxy.heal()
    works_again(store)  # the same store: the pool replaced the connections it lost
    assert store.get("run").owner == "A" and store.update(moved(running, JobStatus.EDITING), fence, new_stage=True)


def test_an_end_cut_off_by_a_partition_fails_in_time_but_may_still_commit_late(proxied):
    """The partition begins between writing the end and committing it: finish() raises
    Unavailable in time, yet its COMMIT was sent, and arrives once the network heals (as TCP
    delivers it): after an Unavailable, whether the job ended is known only by reading it."""
    store, proxy = proxied
    store.add(*job("a"))
    claim = store.claim("A", 30)
    finished = moved(claim.job.status, JobStatus.FINISHED)
    fail_in_time({"finish": lambda: store.finish(finished, claim.fence, commit=proxy.partition)})
    proxy.heal()
    works_again(store)
    deadline = time.monotonic() + 10
    while store.get("a").status != finished:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_row_locked_elsewhere_costs_a_call_no_more_than_the_deadline(postgres):
    url = postgres.database("locked")
    store = PostgresJobStore(url)
    try:
        store.add(*job("a"))
        with psycopg.connect(url) as other, other.transaction():
            other.execute("SELECT * FROM jobs WHERE job_key = 'a' FOR UPDATE")
            took = fail_in_time({"request_cancel": lambda: store.request_cancel("a")})
        assert took["request_cancel"] >= CALL_DEADLINE_S * 0.9  # it waited for the lock, as long as it may
        store.request_cancel("a")  # the lock is gone: it goes through
    finally:
        store.close()


def test_the_first_call_after_a_restart_of_postgresql_succeeds(postgres):
    store = PostgresJobStore(postgres.database("restart"))
    try:
        jobs = [f"j{i}" for i in range(3)]
        for i, job_id in enumerate(jobs):
            store.add(*job(job_id, created_at=1000.0 + i))
        fences = [store.claim("A", 30).fence for _ in jobs]
        together = threading.Barrier(len(jobs), timeout=10)
        with ThreadPoolExecutor(len(jobs)) as pool:  # the pool has as many connections then
            ends = [
                pool.submit(store.finish, moved(store.get(f.key).status, JobStatus.FINISHED), f, together.wait)
                for f in fences
            ]
            assert all(end.result() for end in ends)
        postgres.restart()  # every connection in the pool is dead now
        started = time.monotonic()
        assert store.counts()[JobStatus.FINISHED] == 3
        assert time.monotonic() - started < FAILS_WITHIN_S
        assert store.add(*job("after")) is None and store.claim("B", 30).job.request.job_id == "after"
    finally:
        store.close()


# --- fair claims and max_running (tenants) ---


def tenant_job(tenant: str, job_id: str, created_at: float) -> tuple[VideoEditRequest, VideoEditStatus]:
    request, status = job(job_id, created_at)
    return dataclasses.replace(request, tenant=tenant), dataclasses.replace(status, tenant=tenant)


def claim_keys(store: JobStore, n: int) -> list[str | None]:
    """The keys of the next `n` claims (None: nothing claimable)."""
    return [c.job.request.key if (c := store.claim(f"o{i}", 30)) else None for i in range(n)]


def test_a_tenant_with_one_job_is_served_next_after_one_with_many(store):
    for i in range(20):
        store.add(*tenant_job("a", f"j{i:02d}", created_at=1000.0 + i))
    store.add(*tenant_job("b", "late", created_at=2000.0))
    assert claim_keys(store, 3) == ["a/j00", "b/late", "a/j01"]  # b's job takes the next free slot
    assert claim_keys(store, 19) == [f"a/j{i:02d}" for i in range(2, 20)] + [None]  # a's in order


def test_claims_go_round_the_tenants_first_come_first_served_within_each(store):
    for tenant, start in (("c", 1000.0), ("a", 2000.0), ("b", 3000.0)):  # c queued first, b last
        for i in range(3):
            store.add(*tenant_job(tenant, f"j{i}", created_at=start + i))
    store.add(*job("mine", created_at=4000.0))  # the default tenant takes its turn too
    assert claim_keys(store, 5) == ["c/j0", "a/j0", "b/j0", "mine", "c/j1"]
    assert claim_keys(store, 5) == ["a/j1", "b/j1", "c/j2", "a/j2", "b/j2"]


def test_a_tenant_at_max_running_waits_while_others_are_claimed(store):
    store.set_tenant_settings(TenantSettings("a", max_running=2))
    for i in range(4):
        store.add(*tenant_job("a", f"j{i}", created_at=1000.0 + i))
    for i in range(3):
        store.add(*tenant_job("b", f"j{i}", created_at=2000.0 + i))
    first, *_ = claims = [store.claim(f"o{i}", 30) for i in range(5)]
    assert [c.job.request.key for c in claims] == ["a/j0", "b/j0", "a/j1", "b/j1", "b/j2"]
    assert store.claim("o", 30) is None  # a has 2 running: its queued jobs wait
    ended = moved(first.job.status, JobStatus.FINISHED)
    assert store.finish(ended, first.fence)
    assert claim_keys(store, 2) == ["a/j2", None]  # one ended: one more may run


def test_an_expired_lease_frees_its_tenants_running_slot(store):
    store.set_tenant_settings(TenantSettings("a", max_running=1))
    for i in range(2):
        store.add(*tenant_job("a", f"j{i}", created_at=1000.0 + i))
    assert store.claim("A", lease_s=0.3).job.request.key == "a/j0"
    assert store.claim("B", 30) is None
    taken = claim_within(store, "B")  # A's lease expired: its job runs again, and only it
    assert (taken.job.request.key, taken.previous_owner) == ("a/j0", "A")
    assert store.claim("C", 30) is None


def test_max_running_holds_with_concurrent_claimers(store):
    store.set_tenant_settings(TenantSettings("a", max_running=3))
    for i in range(20):
        store.add(*tenant_job("a", f"j{i:02d}", created_at=1000.0 + i))
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda n: store.claim(f"o{n}", 30), range(8)))
    assert len([c for c in claims if c is not None]) == 3
    assert store.claim("late", 30) is None


def test_claims_keep_tenant_settings_and_settings_keep_the_round_robin(store):
    store.add(*tenant_job("a", "j0", created_at=1000.0))
    store.add(*tenant_job("a", "j1", created_at=1001.0))
    store.add(*tenant_job("b", "j0", created_at=2000.0))
    assert claim_keys(store, 1) == ["a/j0"]
    assert store.tenant_settings("a") is None and store.all_tenant_settings() == []  # a claim sets nothing
    store.set_tenant_settings(TenantSettings("a", max_queued=5))  # a's place in the round robin stays
    assert claim_keys(store, 2) == ["b/j0", "a/j1"]
    assert store.all_tenant_settings() == [TenantSettings("a", max_queued=5)]


def test_counts_by_tenant_hold_the_jobs_not_ended(store):
    for tenant, n in (("a", 3), ("", 1)):
        for i in range(n):
            store.add(*tenant_job(tenant, f"j{i}", created_at=1000.0 + i))
    claim = store.claim("A", 30)  # a/j0
    assert store.update(moved(claim.job.status, JobStatus.EDITING), claim.fence, new_stage=True)
    ended = store.claim("B", 30)  # the default tenant's, served next
    assert store.finish(moved(ended.job.status, JobStatus.FINISHED), ended.fence)
    assert store.counts_by_tenant() == {"a": {JobStatus.QUEUED: 2, JobStatus.EDITING: 1}}
