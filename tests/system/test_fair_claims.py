"""Fair claims across real orchestrator processes: tenant a queues 20 jobs, then tenant b one; b's
job runs in the next free slot after a's first, not after a's 20. On SQLite with one orchestrator
(the claims in order: a's first, b's, a's second) and on PostgreSQL with two orchestrators (b's
among the first two to start, every other job of a's after it). The jobs are queued in process
(JobManager.start as the tenants' callers, no worker of its own) before the orchestrators start,
so what is claimed first is up to the claims alone; the order is read from each job's stage
events in the store (its first status past queued), never from how long anything took. And
max_running across two orchestrators on PostgreSQL: a tenant's jobs beyond it wait for one to end."""

from __future__ import annotations

from contextlib import closing

from clients.local_stack import LocalStack, free_port
from clients.sample_clip import make_sample_clip
from orchestrator.config import Settings
from orchestrator.jobs.manager import JobManager
from orchestrator.jobs.store import JobStore, open_store
from orchestrator.jobs.tenants import Caller, TenantSettings
from orchestrator.models.fake import FakeModels
from orchestrator.request import JobStatus, VideoEditRequest
from tests.helpers import FAST_JOB, NO_MASK_CACHE, wait_for

A_JOBS = [f"a/a{i:02d}" for i in range(20)]
B_JOB = "b/late"


def queue_jobs(stack: LocalStack, job_db: str | None, keys: list[str], a_max_running: int | None = None) -> None:
    """Jobs (tenant/job_id, in this order) as each tenant's (non-admin) caller would start them."""
    clip = make_sample_clip(stack.input_roots[0] / "clip.mp4", frames=12, width=160, height=120)
    settings = Settings(input_roots=tuple(stack.input_roots), output_root=stack.output_root, job_db=job_db)
    jobs = JobManager(settings, FakeModels(), open_store(settings), max_concurrent_jobs=0)  # claims nothing
    try:
        roots = tuple(stack.input_roots)
        jobs.store.set_tenant_settings(TenantSettings("a", max_running=a_max_running, input_roots=roots))
        jobs.store.set_tenant_settings(TenantSettings("b", input_roots=roots))
        for key in keys:
            tenant, job_id = key.split("/")
            request = VideoEditRequest(
                input_video_path=clip, mask_prompt="car", edit_prompt="make it red", job_id=job_id, **FAST_JOB
            )
            jobs.start(request, Caller(tenant))
    finally:
        jobs.shutdown()
        jobs.close()


def start_orchestrators(stack: LocalStack, count: int, job_db: str | None) -> JobStore:
    """`count` orchestrators claiming the jobs; returns the store they share, for the test to read."""
    for index in range(count):
        stack.orchestrator_addresses.append(f"127.0.0.1:{free_port()}")
        stack.start_orchestrator(index)
    return open_store(Settings(input_roots=tuple(stack.input_roots), output_root=stack.output_root, job_db=job_db))


def started_at(store: JobStore, key: str) -> float | None:
    """When the job's first stage past queued began (None: not yet)."""
    stored = store.get(key)
    assert stored is not None
    for status in store.transitions(key, 0, stored.version):
        if status.status is not JobStatus.QUEUED:
            return status.updated_at
    return None


def start_order(store: JobStore) -> list[str] | None:
    """The jobs that have started, in the order they did, once three have (None: not yet)."""
    times = {key: at for key in (*A_JOBS, B_JOB) if (at := started_at(store, key)) is not None}
    return sorted(times, key=times.__getitem__) if len(times) >= 3 else None


def run_until_three_started(stack: LocalStack, job_db: str | None, orchestrators: int) -> list[str]:
    queue_jobs(stack, job_db, [*A_JOBS, B_JOB])
    with closing(start_orchestrators(stack, orchestrators, job_db)) as store:
        return wait_for(lambda: start_order(store), "three jobs started")


def runs(store: JobStore, keys: list[str]) -> dict[str, tuple[float, float]] | None:
    """Each job's run (its first stage past queued began, it finished), once all have ended."""
    found = {}
    for key in keys:
        stored = store.get(key)
        assert stored is not None
        if not stored.status.status.terminal:
            return None
        assert stored.status.status is JobStatus.FINISHED, (key, stored.status.error)
        found[key] = (started_at(store, key) or 0.0, stored.status.updated_at or 0.0)
    return found


def test_one_orchestrator_on_sqlite_serves_the_late_tenant_next(make_stack):
    with make_stack("fair-sqlite", orchestrators=0, env=NO_MASK_CACHE) as stack:
        order = run_until_three_started(stack, None, orchestrators=1)
    assert order[:3] == ["a/a00", B_JOB, "a/a01"]


def test_two_orchestrators_on_postgresql_serve_the_late_tenant_next(make_stack, postgres):
    url = postgres.database("fair")
    with make_stack("fair-pg", orchestrators=0, env={"VIDEOEDIT_JOB_DB": url, **NO_MASK_CACHE}) as stack:
        order = run_until_three_started(stack, url, orchestrators=2)
    # The first two claims, whichever orchestrator made them: a's first job, then b's; every other
    # job of a's started after b's. (Which of a's starts third depends on which slot frees first.)
    assert set(order[:2]) == {"a/a00", B_JOB}, order


def test_max_running_holds_across_two_orchestrators_on_postgresql(make_stack, postgres):
    """a may run one job at a time: with two orchestrators, its jobs still run one after another
    (each starts after the one before it ended), though the other slot is free once b's one job
    ended (without the limit, a's jobs would fill both)."""
    url = postgres.database("fair_running")
    a_jobs, b_jobs = [f"a/r{i}" for i in range(4)], ["b/r0"]
    with make_stack("fair-running", orchestrators=0, env={"VIDEOEDIT_JOB_DB": url, **NO_MASK_CACHE}) as stack:
        queue_jobs(stack, url, [*a_jobs, *b_jobs], a_max_running=1)
        with closing(start_orchestrators(stack, 2, url)) as store:
            found = wait_for(lambda: runs(store, [*a_jobs, *b_jobs]), "every job finished")
    a_runs = sorted(found[key] for key in a_jobs)
    for (_, ended), (started, _) in zip(a_runs, a_runs[1:]):
        assert ended <= started, a_runs
