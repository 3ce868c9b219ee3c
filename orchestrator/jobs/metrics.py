"""Prometheus metrics of an orchestrator's jobs (`--metrics-port`; scrape `/metrics`).

videoedit_orchestrator_jobs{state}                 jobs in the job store by state, read from the store
                                                   on each scrape (shared by every orchestrator on one
                                                   database: queue depth is state="queued")
videoedit_orchestrator_queue_wait_seconds           claim latency: queued -> claimed by an orchestrator
videoedit_orchestrator_stage_seconds{stage}        wall time of each stage of each job run here
videoedit_orchestrator_frames_total{stage}         frames each stage finished (frames/s = its rate)
videoedit_orchestrator_tenant_jobs{tenant,state}   jobs queued and running (in a stage past queued) per tenant,
                                                   from the store like the above
videoedit_orchestrator_jobs_ended_total{status}    finished, failed, cancelled (by this orchestrator)
videoedit_orchestrator_tenant_jobs_started_total{tenant}  jobs this orchestrator started running, per tenant
videoedit_orchestrator_tenant_jobs_ended_total{tenant}    jobs that ended here (any way), per tenant
videoedit_orchestrator_lease_renewals_total        leases on running jobs renewed
videoedit_orchestrator_lease_expiries_total        jobs taken over from an orchestrator whose lease expired
videoedit_orchestrator_leases_lost_total           jobs this orchestrator stopped because its lease was lost
videoedit_orchestrator_webhook_deliveries_total{outcome}  callback tries (jobs/webhooks.py): delivered,
                                                   retried, gave_up, refused (host not allowed, no
                                                   secret), dropped (a full queue, shutdown)

The `tenant` label: "default" for the default tenant; to keep the series bounded, the first
MAX_TENANT_LABELS tenants have their own (by name in the gauge, as first seen in the counters) and
the rest share "other".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..request import JobStatus, VideoEditStatus

log = logging.getLogger(__name__)

_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
MAX_TENANT_LABELS = 50
OTHER_TENANTS = "other"


def tenant_label(tenant: str) -> str:
    return tenant or "default"


class _JobsByState(Collector):
    """The job store's counts (every orchestrator sees the same queue), as last read by the claim
    loop: a scrape never waits on the database."""

    def __init__(self, counts: Callable[[], dict[JobStatus, int]]):
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("videoedit_orchestrator_jobs", "Jobs in the job store, by state", labels=["state"])
        for state, n in self._counts().items():
            family.add_metric([state.value], n)
        yield family


class _JobsByTenant(Collector):
    """Each tenant's jobs queued and running, from the store's counts as last read by the claim
    loop; the first MAX_TENANT_LABELS tenants by name, the rest summed as "other"."""

    def __init__(self, counts: Callable[[], dict[str, dict[JobStatus, int]]]):
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "videoedit_orchestrator_tenant_jobs",
            "Jobs queued and running (in a stage past queued) per tenant",
            labels=["tenant", "state"],
        )
        summed: dict[str, dict[str, int]] = {}
        for i, (tenant, states) in enumerate(sorted(self._counts().items())):
            label = tenant_label(tenant) if i < MAX_TENANT_LABELS else OTHER_TENANTS
            queued = states.get(JobStatus.QUEUED, 0)
            into = summed.setdefault(label, {"queued": 0, "running": 0})
            into["queued"] += queued
            into["running"] += sum(states.values()) - queued  # the counts hold no ended jobs
        for label, states in summed.items():
            for state, n in states.items():
                family.add_metric([label, state], n)
        yield family


class _TenantLabels:
    """The counters' tenant labels: the first MAX_TENANT_LABELS tenants seen keep theirs."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, tenant: str) -> str:
        with self._lock:
            if tenant not in self._seen and len(self._seen) < MAX_TENANT_LABELS:
                self._seen.add(tenant)
            return tenant_label(tenant) if tenant in self._seen else OTHER_TENANTS


class JobMetrics:
    """One registry per orchestrator, so several in one process (tests) do not collide.
    `counts`, `tenant_counts`: the store's counts (all jobs by state; jobs not ended, by tenant)."""

    def __init__(
        self,
        counts: Callable[[], dict[JobStatus, int]],
        tenant_counts: Callable[[], dict[str, dict[JobStatus, int]]] = dict,
    ) -> None:
        self.registry = r = CollectorRegistry()
        r.register(_JobsByState(counts))
        r.register(_JobsByTenant(tenant_counts))
        self._tenant_label = _TenantLabels()
        self.tenant_started = Counter(
            "videoedit_orchestrator_tenant_jobs_started",
            "Jobs started running here, per tenant",
            ["tenant"],
            registry=r,
        )
        self.tenant_ended = Counter(
            "videoedit_orchestrator_tenant_jobs_ended", "Jobs that ended here, per tenant", ["tenant"], registry=r
        )
        self.queue_wait = Histogram(
            "videoedit_orchestrator_queue_wait_seconds",
            "Claim latency: time a job waited, queued, to be claimed",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "videoedit_orchestrator_stage_seconds",
            "Wall time of one job stage",
            ["stage"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.frames = Counter("videoedit_orchestrator_frames", "Frames a stage finished", ["stage"], registry=r)
        self.ended = Counter("videoedit_orchestrator_jobs_ended", "Jobs that ended, by how", ["status"], registry=r)
        self.lease_renewals = Counter("videoedit_orchestrator_lease_renewals", "Job leases renewed", registry=r)
        self.lease_expiries = Counter(
            "videoedit_orchestrator_lease_expiries",
            "Jobs taken over from an orchestrator whose lease expired",
            registry=r,
        )
        self.leases_lost = Counter(
            "videoedit_orchestrator_leases_lost",
            "Jobs stopped here because another orchestrator took them over",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "videoedit_orchestrator_webhook_deliveries",
            "Webhook (extra.callback_url) tries and drops, by outcome",
            ["outcome"],
            registry=r,
        )

    def moved(self, before: VideoEditStatus, entered_at: float, after: VideoEditStatus) -> None:
        """A job run here went from `before` (its stage entered at `entered_at`, unix s) to `after`."""
        elapsed = max(0.0, (after.updated_at or entered_at) - entered_at)
        if before.status is not JobStatus.QUEUED and not before.status.terminal:
            self.stage_seconds.labels(before.status.value).observe(elapsed)
            self.frames.labels(before.status.value).inc(before.current_frame or 0)
        if after.status.terminal:
            self.job_ended(after)

    def started(self, tenant: str) -> None:
        """A job of `tenant` claimed here starts running."""
        self.tenant_started.labels(self._tenant_label(tenant)).inc()

    def job_ended(self, final: VideoEditStatus) -> None:
        """A job ended here (or was cancelled while queued) with this terminal status."""
        self.ended.labels(final.status.value).inc()
        self.tenant_ended.labels(self._tenant_label(final.tenant)).inc()

    def serve(self, port: int, host: str) -> int:
        """Expose /metrics over HTTP on `host` (contract.metrics_host); returns the bound port
        (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = server.server_address[1]
        log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
        return bound
