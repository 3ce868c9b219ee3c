"""The HTTP API and the web page, over the orchestrator's gRPC API (no job state here): the
FastAPI app, which opens the channel to the orchestrator and maps errors to HTTP statuses.

Routes (JSON unless said otherwise; OpenAPI at /openapi.json, docs at /docs), from the routers in
jobs.py, uploads.py, artifacts.py and page.py:

    POST /api/video/edit                      start a job (the original worker's REST example)
    GET  /api/video/status/{job_id}           its status: the original worker's status.to_dict()
    GET  /api/video/events/{job_id}           Server-Sent Events: every status change to the end
    POST /api/video/cancel/{job_id}           cancel it
    GET  /api/video/jobs                      jobs, newest first (?status=&page_size=&page_token=)
    POST /api/video/upload?filename=NAME      the request body is the video; -> its server path
    GET  /api/video/artifact/{job_id}/{kind}  output | mask | log | input, with HTTP Range
    GET  /                                    the web page

With VIDEOEDIT_AUTH_TOKEN set, /api calls need `Authorization: Bearer <token>` (or
`?access_token=<token>`, for <video> and EventSource, which cannot set headers); the token is
passed on to the orchestrator, which checks it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

from . import artifacts, jobs, page, uploads
from .convert import BadRequest
from .deps import GatewaySettings, Unauthenticated, require_token
from .errors import error_response, from_rpc_error

__all__ = ["GatewaySettings", "create_app"]


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway: the channel to the orchestrator opens when the app starts and closes when it stops."""
    app = FastAPI(
        title="videoedit",
        summary="Text-prompted video object editing over HTTP",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    for routes in (page, jobs, uploads, artifacts):
        app.include_router(routes.router)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The orchestrator's stub on `app.state` (deps.get_orchestrator hands it out) while the app serves."""
    channel = open_channel(app.state.settings)
    app.state.stub = pb_grpc.VideoEditServiceStub(channel)
    yield
    await channel.close()


def open_channel(settings: GatewaySettings) -> grpc.aio.Channel:
    """The channel to the orchestrator: TLS when a CA is set ("system": the system's roots)."""
    options = [("grpc.keepalive_time_ms", 30_000), ("grpc.max_receive_message_length", 8 << 20)]
    if settings.tls_ca:
        roots = None if settings.tls_ca == "system" else Path(settings.tls_ca).read_bytes()
        return grpc.aio.secure_channel(settings.orchestrator, grpc.ssl_channel_credentials(roots), options)
    return grpc.aio.insecure_channel(settings.orchestrator, options)


async def unauthenticated(_request: Request, err: Unauthenticated) -> Response:
    return error_response(401, "UNAUTHENTICATED", str(err))


async def rpc_failed(_request: Request, err: grpc.RpcError) -> Response:
    return from_rpc_error(err)


async def bad_request(_request: Request, err: BadRequest) -> Response:
    return error_response(400, "INVALID_ARGUMENT", str(err))


async def not_routed(request: Request, err: HTTPException) -> Response:
    """No route for this path or method: under /api/, a caller without the token learns only that
    (401), not which routes exist; otherwise FastAPI's own 404 or 405."""
    if request.url.path.startswith("/api/"):
        try:
            await require_token(request, request.app.state.settings)
        except Unauthenticated as missing:
            return await unauthenticated(request, missing)
    return await http_exception_handler(request, err)


EXCEPTION_HANDLERS = {
    Unauthenticated: unauthenticated,
    grpc.RpcError: rpc_failed,
    BadRequest: bad_request,
    404: not_routed,
    405: not_routed,
}
