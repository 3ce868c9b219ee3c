"""Fair claims across real orchestrator processes: tenant a queues 20 jobs, then tenant b one; b's
job runs in the next free slot after a's first, not after a's 20. On SQLite with one orchestrator
(the claims in order: a's first, b's, a's second) and on PostgreSQL with two orchestrators (b's
among the first two to start, every other job of a's after it). The jobs are queued in process
(JobManager.start as the tenants' callers, no worker of its own) before the orchestrators start,
so what is claimed first is up to the claims alone; the order is read from each job's stage
events in the store (its first status past queued), never from how long anything took."""

from __future__ import annotations

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


def queue_jobs(stack: LocalStack, job_db: str | None) -> None:
    """a's 20 jobs, then b's one, as each tenant's (non-admin) caller would start them."""
    clip = make_sample_clip(stack.input_roots[0] / "clip.mp4", frames=12, width=160, height=120)
    settings = Settings(input_roots=tuple(stack.input_roots), output_root=stack.output_root, job_db=job_db)
    jobs = JobManager(settings, FakeModels(), open_store(settings), max_concurrent_jobs=0)  # claims nothing
    try:
        for tenant in ("a", "b"):
            jobs.store.set_tenant_settings(TenantSettings(tenant, input_roots=tuple(stack.input_roots)))
        for key in (*A_JOBS, B_JOB):
            tenant, job_id = key.split("/")
            request = VideoEditRequest(
                input_video_path=clip, mask_prompt="car", edit_prompt="make it red", job_id=job_id, **FAST_JOB
            )
            jobs.start(request, Caller(tenant))
    finally:
        jobs.shutdown()
        jobs.close()


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
    queue_jobs(stack, job_db)
    for index in range(orchestrators):
        stack.orchestrator_addresses.append(f"127.0.0.1:{free_port()}")
        stack.start_orchestrator(index)
    store = open_store(Settings(input_roots=tuple(stack.input_roots), output_root=stack.output_root, job_db=job_db))
    try:
        return wait_for(lambda: start_order(store), "three jobs started")
    finally:
        store.close()


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
