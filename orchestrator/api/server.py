"""`videoedit-orchestrator`: VideoEditService (grpc.aio) with health, reflection, optional token and TLS.

Environment: see the README's configuration table (VIDEOEDIT_AUTH_TOKEN sets the admin token;
API keys are made with videoedit-admin).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from videoedit.v1 import contract, video_edit_pb2, video_edit_pb2_grpc

from ..config import Settings
from ..jobs.manager import JobManager
from ..jobs.store import JobStoreError, open_store
from ..jobs.watchers import WatchHub
from ..jobs.worker import CLAIMS, STORE
from ..models.grpc_client import ModelClient
from .limits import StreamLimits
from .security import CallerInterceptor, KeyAuthenticator, server_credentials
from .servicer import VideoEditServicer

log = logging.getLogger("videoedit.orchestrator")
# Threads for the blocking work of every RPC (job store calls, file reads and writes): RPCs wait
# here only while they run such a call, never while a stream is open.
BLOCKING_THREADS = 32
SHUTDOWN_REPORT_S = 60  # a shutdown still running after this long dumps every thread's stack to the log
STEP_LIMIT_S = 15  # the longest a shutdown step after the jobs' hand-back may take (past the API's grace)
SERVICE_NAME = video_edit_pb2.DESCRIPTOR.services_by_name["VideoEditService"].full_name
# The health of claiming jobs, apart from serving the API: NOT_SERVING while no model server is
# ready (jobs wait in the queue) or the server shuts down; the log says why.
CLAIMS_SERVICE = "videoedit.v1.VideoEditService.claims"
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Orchestrator:
    """One serving orchestrator: the gRPC server (grpc.aio) on `port`, its jobs, watch hub, health
    servicer and the executor of blocking calls."""

    server: grpc.aio.Server
    jobs: JobManager
    hub: WatchHub
    health: health_aio.HealthServicer
    port: int
    blocking: ThreadPoolExecutor

    async def stop(self, grace_s: float = 5.0) -> bool:
        """Refuse new jobs, say NOT_SERVING, hand the running jobs back to the queue (for another
        orchestrator or this one's next start), let watchers see their jobs' last status, then
        stop the server with a grace for the calls in flight and close the store and the models.
        False when a step after the hand-back outlasted its bound (logged with every thread's
        stack, and skipped: the process should then exit without waiting for what it left)."""
        loop = asyncio.get_running_loop()
        self.jobs.begin_shutdown()
        for name in ("", SERVICE_NAME, CLAIMS_SERVICE):
            await self.health.set(name, NOT_SERVING)
        await loop.run_in_executor(self.blocking, self.jobs.shutdown)
        log.info("shutdown: running jobs handed back; closing the watch streams")
        clean = await _within(self.hub.close(), STEP_LIMIT_S, "closing the watch streams")
        log.info("shutdown: stopping the API (%g s for the calls in flight)", grace_s)
        clean &= await _within(self.server.stop(grace_s), grace_s + STEP_LIMIT_S, "stopping the API")
        log.info("shutdown: closing the job store and the model connections")
        await loop.run_in_executor(self.blocking, self.jobs.close)
        self.blocking.shutdown(wait=clean)
        log.info("shutdown: done")
        return clean


async def _within(step: Awaitable[None], limit_s: float, what: str) -> bool:
    """Await `step` for at most `limit_s`; False (logged with every thread's stack) when it did
    not end in time: a step stuck (as the watch hub once was) must not keep a stopped process."""
    try:
        await asyncio.wait_for(step, limit_s)
        return True
    except TimeoutError:
        log.error("shutdown: %s did not end within %g s; skipped. Threads:", what, limit_s)
        faulthandler.dump_traceback(all_threads=True)
        return False


async def serve(
    address: str,
    settings: Settings,
    max_concurrent_jobs: int = 1,
    max_queued_jobs: int = 100,
) -> Orchestrator:
    """Start the server (on the running loop)."""
    blocking = ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="blocking")
    models = ModelClient(settings.model_servers, settings.model_timeout_s, settings.model_token)
    jobs = JobManager(settings, models, open_store(settings), max_concurrent_jobs, max_queued_jobs)
    hub = WatchHub(jobs.store, jobs.get, blocking)
    jobs.on_change = hub.changed
    hub.start()
    authenticator = KeyAuthenticator(jobs.store, settings.auth_token, settings.gateway_token)
    server = grpc.aio.server(
        interceptors=[CallerInterceptor(authenticator, blocking)],
        options=[
            # WatchStatus streams are long and quiet: let clients keep them alive
            # with pings (the client library pings every 30 s).
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    servicer = VideoEditServicer(jobs, hub, StreamLimits(settings), blocking)
    video_edit_pb2_grpc.add_VideoEditServiceServicer_to_server(servicer, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if settings.tls_cert and settings.tls_key:
        port = server.add_secure_port(address, server_credentials(settings.tls_cert, settings.tls_key))
    else:
        port = server.add_insecure_port(address)
    await server.start()
    _report_health(jobs, health_servicer, asyncio.get_running_loop())
    log.info(
        "VideoEditService on %s:%d as orchestrator %s (%s, auth: %s, reflection %s); jobs in %s; model servers "
        "%s; inputs under %s; outputs under %s",
        address.rpartition(":")[0],
        port,
        jobs.name,
        "TLS" if settings.tls_cert else "plaintext",
        authenticator.mode(),
        "on" if settings.reflection else "off",
        jobs.store.description,
        settings.model_servers,
        os.pathsep.join(map(str, settings.input_roots)),
        settings.output_root,
    )
    return Orchestrator(server, jobs, hub, health_servicer, port, blocking)


def _report_health(
    jobs: JobManager, health_servicer: health_aio.HealthServicer, loop: asyncio.AbstractEventLoop
) -> None:
    """Health follows the job manager's conditions: NOT_SERVING while the job store cannot be
    reached (every RPC would answer UNAVAILABLE), the claims' own service NOT_SERVING while paused.
    The conditions change on job threads: the health servicer is set on the loop."""

    async def set_health(what: str, why: str | None) -> None:
        if jobs.stopping:  # a shutdown said NOT_SERVING: nothing brings it back
            return
        serving = health_pb2.HealthCheckResponse.SERVING if why is None else NOT_SERVING
        for name in ("", SERVICE_NAME) if what == STORE else (CLAIMS_SERVICE,):
            await health_servicer.set(name, serving)

    def changed(what: str, why: str | None) -> None:
        asyncio.run_coroutine_threadsafe(set_health(what, why), loop)

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
    asyncio.run(_serve_until_stopped(args))


async def _serve_until_stopped(args: argparse.Namespace) -> None:
    try:  # a bad setting or an unusable job store: say why, never report SERVING
        settings = Settings.from_env()
        settings = dataclasses.replace(
            settings,
            tls_cert=args.tls_cert or settings.tls_cert,
            tls_key=args.tls_key or settings.tls_key,
            reflection=settings.reflection and not args.no_reflection,
        )
        orchestrator = await serve(f"{args.host}:{args.port}", settings, args.max_concurrent_jobs, args.max_queued_jobs)
    except (ValueError, JobStoreError) as err:
        log.error("cannot start: %s", err)
        sys.exit(2)
    if args.metrics_port:
        orchestrator.jobs.metrics.serve(args.metrics_port, contract.metrics_host(os.environ))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: refusing new jobs; running jobs stop and re-run on the next orchestrator to claim them")
    # A shutdown that takes this long is stuck somewhere: every thread's stack goes to stderr (the
    # log), so whoever looks finds where, instead of a process that just does not exit.
    faulthandler.dump_traceback_later(SHUTDOWN_REPORT_S, exit=False)
    clean = await orchestrator.stop()
    faulthandler.cancel_dump_traceback_later()
    if not clean:  # the jobs were handed back; what was left stuck must not keep the process
        logging.shutdown()
        os._exit(0)
