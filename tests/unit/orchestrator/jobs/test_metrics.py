"""Metrics by tenant: the queued/running gauge from the store's counts, and the started/ended
counters; the default tenant's label is "default", and the tenants past the first 50 share "other"."""

from __future__ import annotations

from orchestrator.jobs.metrics import MAX_TENANT_LABELS, JobMetrics
from orchestrator.request import JobStatus, VideoEditStatus


def gauge(metrics: JobMetrics, tenant: str, state: str) -> float | None:
    return metrics.registry.get_sample_value("videoedit_orchestrator_tenant_jobs", {"tenant": tenant, "state": state})


def test_the_gauge_counts_queued_and_running_per_tenant_with_the_rest_as_other():
    counts = {"": {JobStatus.QUEUED: 2, JobStatus.EDITING: 1}, "acme": {JobStatus.MASKING: 3}}
    counts |= {f"t{i:03d}": {JobStatus.QUEUED: 1} for i in range(MAX_TENANT_LABELS)}  # 52 tenants
    metrics = JobMetrics(dict, lambda: counts)
    assert (gauge(metrics, "default", "queued"), gauge(metrics, "default", "running")) == (2, 1)
    assert (gauge(metrics, "acme", "queued"), gauge(metrics, "acme", "running")) == (0, 3)
    assert gauge(metrics, "t047", "queued") == 1 and gauge(metrics, "t048", "queued") is None  # by name
    assert gauge(metrics, "other", "queued") == 2  # t048, t049


def test_the_counters_label_jobs_by_tenant():
    metrics = JobMetrics(dict)
    for i in range(MAX_TENANT_LABELS + 2):
        metrics.started(f"t{i}")
    metrics.started("")
    metrics.job_ended(VideoEditStatus(job_id="j", status=JobStatus.FINISHED, tenant="t0"))

    def value(name: str, tenant: str) -> float | None:
        return metrics.registry.get_sample_value(f"videoedit_orchestrator_tenant_jobs_{name}_total", {"tenant": tenant})

    assert value("started", "t0") == 1 and value("started", "other") == 3  # t50, t51 and "" came late
    assert value("ended", "t0") == 1
    assert metrics.registry.get_sample_value("videoedit_orchestrator_jobs_ended_total", {"status": "finished"}) == 1
