"""`videoedit-orchestrator`: VideoEditService with health, reflection, optional token and TLS.

Environment: see the README's configuration table (VIDEOEDIT_AUTH_TOKEN sets the token).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from videoedit.v1 import contract, video_edit_pb2, video_edit_pb2_grpc
from videoedit.v1.auth import BearerTokenInterceptor

from ..config import Settings
from ..jobs.manager import JobManager
from ..jobs.store import JobStoreError, open_store
from ..jobs.worker import CLAIMS, STORE
from ..models.grpc_client import ModelClient
from .security import server_credentials
from .servicer import VideoEditServicer

log = logging.getLogger("videoedit.orchestrator")
RPC_THREADS = 256
SERVICE_NAME = video_edit_pb2.DESCRIPTOR.services_by_name["VideoEditService"].full_name
# The health of claiming jobs, apart from serving the API: NOT_SERVING while no model server is
# ready (jobs wait in the queue) or the server shuts down; the log says why.
CLAIMS_SERVICE = "videoedit.v1.VideoEditService.claims"


def serve(
    address: str,
    settings: Settings,
    max_concurrent_jobs: int = 1,
    max_queued_jobs: int = 100,
) -> tuple[grpc.Server, JobManager, health.HealthServicer, int]:
    """Start the server; returns it, its job manager, its health servicer and the bound port."""
    models = ModelClient(settings.model_servers, settings.model_timeout_s, settings.model_token)
    jobs = JobManager(settings, models, open_store(settings), max_concurrent_jobs, max_queued_jobs)
    interceptors = [BearerTokenInterceptor(settings.auth_token, "VIDEOEDIT_AUTH_TOKEN")] if settings.auth_token else []
    # A WatchStatus stream holds a thread while it is open, so the pool is sized for many
    # watchers (threads are created on demand and kept; RPCs beyond the pool wait their turn).
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=RPC_THREADS, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            # WatchStatus streams are long and quiet: let clients keep them alive
            # with pings (the client library pings every 30 s).
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    video_edit_pb2_grpc.add_VideoEditServiceServicer_to_server(VideoEditServicer(jobs), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if settings.tls_cert and settings.tls_key:
        port = server.add_secure_port(address, server_credentials(settings.tls_cert, settings.tls_key))
    else:
        port = server.add_insecure_port(address)
    server.start()
    _report_health(jobs, health_servicer)
    log.info(
        "VideoEditService on %s:%d as orchestrator %s (%s, %s, reflection %s); jobs in %s; model servers "
        "%s; inputs under %s; outputs under %s",
        address.rpartition(":")[0],
        port,
        jobs.name,
        "TLS" if settings.tls_cert else "plaintext",
        "token required" if settings.auth_token else "no auth",
        "on" if settings.reflection else "off",
        jobs.store.description,
        settings.model_servers,
        os.pathsep.join(map(str, settings.input_roots)),
        settings.output_root,
    )
    return server, jobs, health_servicer, port


def _report_health(jobs: JobManager, health_servicer: health.HealthServicer) -> None:
    """Health follows the job manager's conditions: NOT_SERVING while the job store cannot be
    reached (every RPC would answer UNAVAILABLE), the claims' own service NOT_SERVING while paused."""

    def changed(what: str, why: str | None) -> None:
        if jobs.stopping:  # a shutdown said NOT_SERVING: nothing brings it back
            return
        serving = health_pb2.HealthCheckResponse.SERVING if why is None else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME) if what == STORE else (CLAIMS_SERVICE,):
            health_servicer.set(name, serving)

    jobs.conditions.on_change = changed
    for what in (STORE, CLAIMS):
        changed(what, jobs.conditions.why(what))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="videoedit-orchestrator", description=__doc__)
    # Loopback unless told: containers set VIDEOEDIT_HOST=0.0.0.0 (Dockerfile, compose, Kubernetes).
    parser.add_argument("--host", default=os.environ.get("VIDEOEDIT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("VIDEOEDIT_PORT", 50051)))
    parser.add_argument(
        "--max-concurrent-jobs",
        type=int,
        default=1,
        help="jobs run side by side (0: serve the API only and run no jobs; needs a job store "
        "shared with orchestrators that do, VIDEOEDIT_JOB_DB=postgresql://...)",
    )
    parser.add_argument("--max-queued-jobs", type=int, default=100)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain (env VIDEOEDIT_TLS_CERT)")
    parser.add_argument("--tls-key", type=Path, help="PEM private key (env VIDEOEDIT_TLS_KEY)")
    parser.add_argument("--no-reflection", action="store_true", help="turn gRPC reflection off")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("VIDEOEDIT_ORCHESTRATOR_METRICS_PORT", 0)),
        help="Prometheus /metrics port of the jobs (0: off; 9092 is a good choice); it listens on "
        "VIDEOEDIT_METRICS_HOST (default: loopback, every interface in a container)",
    )
    args = parser.parse_args(argv)
    if args.max_concurrent_jobs < 0:
        parser.error(f"--max-concurrent-jobs {args.max_concurrent_jobs}: must be 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:  # a bad setting or an unusable job store: say why, never report SERVING
        settings = Settings.from_env()
        settings = dataclasses.replace(
            settings,
            tls_cert=args.tls_cert or settings.tls_cert,
            tls_key=args.tls_key or settings.tls_key,
            reflection=settings.reflection and not args.no_reflection,
        )
        server, jobs, health_servicer, _ = serve(
            f"{args.host}:{args.port}", settings, args.max_concurrent_jobs, args.max_queued_jobs
        )
    except (ValueError, JobStoreError) as err:
        log.error("cannot start: %s", err)
        sys.exit(2)
    if args.metrics_port:
        jobs.metrics.serve(args.metrics_port, contract.metrics_host(os.environ))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Wake up every second: the kernel may deliver SIGTERM to any thread, and Python runs the
    # handler only when the main thread next runs bytecode (an untimed wait could sleep through it).
    while not stop.wait(1.0):
        pass
    log.info("shutting down: refusing new jobs; running jobs stop and re-run on the next orchestrator to claim them")
    jobs.begin_shutdown()
    for name in ("", SERVICE_NAME, CLAIMS_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    jobs.shutdown()  # watchers see the jobs' last status before their streams close
    server.stop(grace=5).wait()
