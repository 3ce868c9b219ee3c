"""The job store's contract, on both implementations: SQLite (a file) and PostgreSQL (a real
server from the `postgres` fixture). Claims, leases, hand-backs, cancel flags, stage events,
migrations of an old SQLite file, and refusing a database newer than the code."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from orchestrator.jobs.store import JobStoreError, SqliteJobStore
from orchestrator.jobs.store.postgres import PostgresJobStore, describe
from orchestrator.request import JobStatus, VideoEditRequest, VideoEditStatus


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    else:
        opened = PostgresJobStore(request.getfixturevalue("postgres").database("store"))
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


def test_only_the_owner_writes_and_an_expired_lease_is_taken_over(store):
    request, status = job("a")
    store.add(request, status)
    store.claim("A", lease_s=0.3)
    editing = moved(status, JobStatus.EDITING)
    assert store.update(editing, "A", new_stage=True)
    assert not store.update(moved(status, JobStatus.SAVING), "B", new_stage=True)  # not B's job
    assert store.claim("B", 30) is None  # A's lease still runs
    time.sleep(0.5)
    taken = store.claim("B", 30)
    assert taken.previous_owner == "A" and taken.attempt == 2 and taken.job.status.status is JobStatus.EDITING
    assert not store.update(moved(status, JobStatus.SAVING), "A", new_stage=True)  # A lost it
    assert [lease.job_id for lease in store.renew("B", 30)] == ["a"] and store.renew("A", 30) == []


def test_a_released_job_is_unowned_and_claimable_at_once(store):
    request, status = job("a")
    store.add(request, status)
    store.claim("A", 30)
    interrupted = moved(status, JobStatus.QUEUED, message="interrupted by a server shutdown")
    assert store.update(interrupted, "A", new_stage=True, release=True)
    assert store.owners() == set()
    again = store.claim("B", 30)
    assert again.previous_owner is None and again.attempt == 2


def test_cancel_flags_reach_the_owner_and_cancel_queued_only_when_unclaimed(store):
    for job_id in ("queued", "claimed"):
        store.add(*job(job_id, created_at=2000.0 if job_id == "queued" else 1000.0))
    claim = store.claim("A", 30)
    assert claim.job.request.job_id == "claimed"
    cancelled = moved(claim.job.status, JobStatus.CANCELLED)
    assert not store.cancel_queued(cancelled)  # claimed: its owner must stop it
    store.request_cancel("claimed")
    assert [(lease.job_id, lease.cancel_requested) for lease in store.renew("A", 30)] == [("claimed", True)]
    assert store.cancel_queued(moved(store.get("queued").status, JobStatus.CANCELLED))
    assert store.get("queued").status.status is JobStatus.CANCELLED and store.claim("B", 30) is None


def test_transitions_keep_every_stage_for_watchers_elsewhere(store):
    request, status = job("a")
    store.add(request, status)
    store.claim("A", 30)
    start = store.get("a").version
    for stage in (JobStatus.EXTRACTING, JobStatus.MASKING):
        store.update(moved(status, stage), "A", new_stage=True)
        store.update(moved(status, stage, progress=0.1), "A", new_stage=False)  # progress: no event
    latest = store.get("a").version
    seen = store.transitions("a", after_version=start, up_to_version=latest)
    assert [s.status for s in seen] == [JobStatus.EXTRACTING, JobStatus.MASKING]
    assert store.transitions("a", after_version=start, up_to_version=latest - 2) == seen[:1]


def test_counts_and_pages(store):
    for i in range(5):
        store.add(*job(f"j{i}", created_at=1000.0 + i))
    store.claim("A", 30)
    store.update(moved(store.get("j0").status, JobStatus.FINISHED), "A", new_stage=True, release=True)
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
