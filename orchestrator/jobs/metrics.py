"""Prometheus metrics of an orchestrator's jobs (`--metrics-port`; scrape `/metrics`).

videoedit_orchestrator_jobs{state}                 jobs in the job store by state, read from the store
                                                   on each scrape (shared by every orchestrator on one
                                                   database: queue depth is state="queued")
videoedit_orchestrator_queue_wait_seconds           claim latency: queued -> claimed by an orchestrator
videoedit_orchestrator_stage_seconds{stage}        wall time of each stage of each job run here
videoedit_orchestrator_frames_total{stage}         frames each stage finished (frames/s = its rate)
videoedit_orchestrator_jobs_ended_total{status}    finished, failed, cancelled (by this orchestrator)
videoedit_orchestrator_lease_renewals_total        leases on running jobs renewed
videoedit_orchestrator_lease_expiries_total        jobs taken over from an orchestrator whose lease expired
videoedit_orchestrator_leases_lost_total           jobs this orchestrator stopped because its lease was lost
videoedit_orchestrator_webhook_deliveries_total{outcome}  callback tries (jobs/webhooks.py): delivered,
                                                   retried, gave_up, refused (host not allowed, no
                                                   secret), dropped (a full queue, shutdown)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..request import JobStatus, VideoEditStatus

log = logging.getLogger(__name__)

_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


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


class JobMetrics:
    """One registry per orchestrator, so several in one process (tests) do not collide."""

    def __init__(self, counts: Callable[[], dict[JobStatus, int]]) -> None:
        self.registry = r = CollectorRegistry()
        r.register(_JobsByState(counts))
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
            self.ended.labels(after.status.value).inc()

    def serve(self, port: int, host: str) -> int:
        """Expose /metrics over HTTP on `host` (contract.metrics_host); returns the bound port
        (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = server.server_address[1]
        log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
        return bound
