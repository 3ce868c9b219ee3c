"""Prometheus metrics of an orchestrator's jobs (`--metrics-port`; scrape `/metrics`).

    videoedit_orchestrator_jobs{state}                 jobs this orchestrator knows, by state (queue depth:
                                                       state="queued")
    videoedit_orchestrator_queue_wait_seconds           queued -> started
    videoedit_orchestrator_stage_seconds{stage}        wall time of each stage of each job
    videoedit_orchestrator_frames_total{stage}         frames each stage finished (frames/s = its rate)
    videoedit_orchestrator_jobs_ended_total{status}    finished, failed, cancelled
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..request import JobStatus, VideoEditStatus

log = logging.getLogger(__name__)

_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class JobMetrics:
    """One registry per orchestrator, so several in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.jobs = Gauge("videoedit_orchestrator_jobs", "Jobs this orchestrator knows, by state", ["state"],
                          registry=r)
        self.queue_wait = Histogram("videoedit_orchestrator_queue_wait_seconds", "Time a job waited to start",
                                    buckets=_SECONDS_BUCKETS, registry=r)
        self.stage_seconds = Histogram("videoedit_orchestrator_stage_seconds", "Wall time of one job stage",
                                       ["stage"], buckets=_SECONDS_BUCKETS, registry=r)
        self.frames = Counter("videoedit_orchestrator_frames", "Frames a stage finished", ["stage"], registry=r)
        self.ended = Counter("videoedit_orchestrator_jobs_ended", "Jobs that ended, by how", ["status"], registry=r)

    def added(self, status: VideoEditStatus) -> None:
        self.jobs.labels(status.status.value).inc()

    def moved(self, before: VideoEditStatus, entered_at: float, after: VideoEditStatus) -> None:
        """A job went from `before` (its stage entered at `entered_at`, unix s) to `after`."""
        self.jobs.labels(before.status.value).dec()
        self.jobs.labels(after.status.value).inc()
        elapsed = max(0.0, (after.updated_at or entered_at) - entered_at)
        if before.status is JobStatus.QUEUED:
            if not after.status.terminal:
                self.queue_wait.observe(elapsed)
        elif not before.status.terminal:
            self.stage_seconds.labels(before.status.value).observe(elapsed)
            self.frames.labels(before.status.value).inc(before.current_frame or 0)
        if after.status.terminal:
            self.ended.labels(after.status.value).inc()

    def serve(self, port: int, host: str = "") -> int:
        """Expose /metrics over HTTP; returns the bound port (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host or "0.0.0.0", registry=self.registry)
        bound = server.server_address[1]
        log.info("Prometheus metrics on http://%s:%d/metrics", host or "0.0.0.0", bound)
        return bound
