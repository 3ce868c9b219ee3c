"""HeldClaim: a running job's claim on a real SQLite job store, its lease kept by the local clock
(it stops holding before the database would let another orchestrator claim the job), a store
that says the job is another's, and ends written through database hiccups (injected)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from orchestrator.errors import Unavailable
from orchestrator.jobs import claims
from orchestrator.jobs.claims import HeldClaim, lease_margin
from orchestrator.jobs.store import SqliteJobStore
from orchestrator.pipeline.concurrency import StopReason, StopSignal
from orchestrator.request import JobStatus
from tests.unit.orchestrator.jobs.test_store import job, moved

LEASE_S = 10.0


@pytest.fixture
def store(tmp_path):
    opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def claimed(store, claimed_at: float | None = None) -> tuple[HeldClaim, list[str]]:
    """Job "j" added and claimed by "A"; the claim, and the reasons it was told it lost the job."""
    store.add(*job("j"))
    claim = store.claim("A", LEASE_S)
    lost: list[str] = []
    held = HeldClaim(
        store, claim.fence, LEASE_S, time.monotonic() if claimed_at is None else claimed_at, StopSignal(), lost.append
    )
    return held, lost


class Hiccups:
    """A store whose writes fail `times` times with Unavailable first (a database restarting)."""

    def __init__(self, store, times: int) -> None:
        self._store, self.left = store, times

    def __getattr__(self, name):
        method = getattr(self._store, name)

        def call(*args, **kwargs):
            if self.left:
                self.left -= 1
                raise Unavailable("the job database cannot be reached (injected); retry shortly")
            return method(*args, **kwargs)

        return call


def test_a_claim_stops_holding_before_its_lease_could_run_out_and_renewals_push_that_on(store):
    margin = lease_margin(LEASE_S)
    held, _ = claimed(store, claimed_at=time.monotonic() - (LEASE_S - margin) - 0.01)
    assert not held.holds() and held.overdue() > 0  # by the local clock: stop before another may claim
    held.renewed(time.monotonic())
    assert held.holds() and held.overdue() == pytest.approx(-(LEASE_S - margin), abs=0.5)
    assert 2 <= lease_margin(30) < 30 / 2 and lease_margin(2) == 1


def test_a_store_that_says_the_job_is_anothers_stops_it(store):
    held, lost = claimed(store)
    status = store.get("j").status
    assert held.update(moved(status, JobStatus.MASKING), new_stage=True)
    store.expire("A")
    store.claim("B", LEASE_S)  # B took it over
    assert not held.update(moved(status, JobStatus.EDITING), new_stage=True)
    assert held.stop.stopped_for(StopReason.LEASE_LOST) and not held.holds() and len(lost) == 1
    assert store.get("j").status.status is JobStatus.MASKING  # A's editing never landed


def test_an_end_is_written_through_database_hiccups(store, monkeypatch):
    monkeypatch.setattr(claims, "RETRY_FIRST_S", 0.01)
    held, _ = claimed(store)
    flaky = Hiccups(store, times=3)
    held.store = flaky
    committed: list[bool] = []
    assert held.finish(moved(store.get("j").status, JobStatus.FINISHED), lambda: committed.append(True))
    assert committed == [True] and flaky.left == 0 and store.get("j").status.status is JobStatus.FINISHED
    assert store.claim("A", LEASE_S) is None  # ended: never run again


def test_an_end_that_cannot_be_written_while_the_claim_holds_is_given_up(store, monkeypatch):
    monkeypatch.setattr(claims, "RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(claims, "RETRY_MAX_S", 0.01)
    held, _ = claimed(store, claimed_at=time.monotonic() - (LEASE_S - lease_margin(LEASE_S)) + 0.3)
    held.store = Hiccups(store, times=10**6)
    committed: list[bool] = []
    assert not held.finish(moved(store.get("j").status, JobStatus.FINISHED), lambda: committed.append(True))
    assert not committed and not held.holds()


def test_a_job_handed_back_waits_its_retry_time_and_a_taken_one_is_not_handed_back(store):
    held, _ = claimed(store)
    queued = dataclasses.replace(store.get("j").status, message="waiting out an outage")
    assert held.release(queued, retry_after_s=60)
    assert store.claim("A", LEASE_S) is None  # not before its retry time
    assert not held.release(queued, retry_after_s=0)  # not held any more: nothing written
