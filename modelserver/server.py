"""The gRPC server of ModelService: port, health, reflection. The port opens before the models
load (health NOT_SERVING), so orchestrators and probes can tell "loading" from "down".
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1.auth import BearerTokenInterceptor

from .metrics import Metrics
from .servicer import ModelServicer
from .validation import Limits

log = logging.getLogger("videoedit.modelserver")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelService"].full_name


def serve(
    address: str,
    limits: Limits,
    metrics: Metrics,
    max_message_mb: int,
    max_queued_calls: int,
    token: str | None = None,
) -> tuple[grpc.Server, ModelServicer, health.HealthServicer, int]:
    """Open the port with health NOT_SERVING; `servicer.load()` and `set_health()` follow.
    `token` (VIDEOEDIT_MODEL_TOKEN): every call but health's must carry it."""
    limit = max_message_mb * 1024 * 1024
    # Enough RPC threads for every queued call to wait in its queue (the queues bound the work).
    workers = 2 * max_queued_calls + 8
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[BearerTokenInterceptor(token, "VIDEOEDIT_MODEL_TOKEN")] if token else [],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # Clients ping every 30 s during long calls to detect dead replicas; gRPC's default
            # policy would count those pings as abuse and close the connection mid-call.
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    servicer = ModelServicer(limits, metrics)
    pb_grpc.add_ModelServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    set_health(health_servicer, serving=False)
    port = server.add_insecure_port(address)
    server.start()
    log.info(
        "ModelService on %s:%d, %s (NOT_SERVING until the models are loaded and warmed up)",
        address.rpartition(":")[0],
        port,
        "token required (VIDEOEDIT_MODEL_TOKEN)" if token else "no auth: any caller that reaches the port is served",
    )
    return server, servicer, health_servicer, port


def set_health(health_servicer: health.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, status)
