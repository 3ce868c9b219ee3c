"""Prometheus metrics of a model server (scrape `http://HOST:METRICS_PORT/metrics`).

Rates come from the counters: items/s = rate(videoedit_modelserver_items_total[1m]).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """One registry per server, so several servers in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "videoedit_modelserver_requests", "RPCs handled, by method and status code", ["rpc", "code"], registry=r
        )
        self.batch_size = Histogram(
            "videoedit_modelserver_batch_size",
            "Items per model batch (Edit: crops; Segment: frames)",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "videoedit_modelserver_queue_wait_seconds",
            "Time a call waited in its model's queue",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "videoedit_modelserver_compute_seconds",
            "Time to run one batch",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "videoedit_modelserver_items", "Items processed (Edit: crops; Segment: frames)", ["model"], registry=r
        )
        self.edit_results_reused = Counter(
            "videoedit_modelserver_edit_results_reused",
            "Edit crops answered from results kept (computed for a call whose client left, e.g. an "
            "orchestrator killed mid-job, whose next attempt sent them again)",
            registry=r,
        )
        self.queued_calls = Gauge(
            "videoedit_modelserver_queued_calls", "Calls waiting in a model's queue", ["model"], registry=r
        )
        self.visual_prompts = Counter(
            "videoedit_modelserver_visual_prompts",
            "Visual prompts applied in Segment calls, by kind (exemplar box, correction of a tracked "
            "object, new object)",
            ["kind"],
            registry=r,
        )
        self.tracking_sessions = Gauge(
            "videoedit_modelserver_tracking_sessions",
            "SAM3 tracking sessions held (their state stays on the device)",
            registry=r,
        )
        self.tracking_sessions_ended = Counter(
            "videoedit_modelserver_tracking_sessions_ended",
            "Tracking sessions ended, by reason (closed by the caller, expired idle, evicted for room, failed)",
            ["reason"],
            registry=r,
        )

    def serve(self, port: int, host: str) -> int:
        """Expose /metrics over HTTP on `host` (contract.metrics_host); returns the bound port
        (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = server.server_address[1]
        log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
        return bound
