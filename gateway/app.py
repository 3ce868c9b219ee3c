"""The HTTP API and the web page, over the orchestrator's gRPC API (no job state here).

Routes (JSON unless said otherwise; OpenAPI at /openapi.json, docs at /docs):

    POST /api/video/edit                      start a job (the seed's REST example)
    GET  /api/video/status/{job_id}           its status: the seed's status.to_dict()
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

from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

from . import artifacts, jobs, uploads
from .convert import BadRequest
from .deps import GatewaySettings, Unauthenticated, require_token
from .errors import error_response, from_rpc_error

STATIC = Path(__file__).parent / "static"


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        options = [("grpc.keepalive_time_ms", 30_000), ("grpc.max_receive_message_length", 8 << 20)]
        if settings.tls_ca:
            roots = None if settings.tls_ca == "system" else Path(settings.tls_ca).read_bytes()
            channel = grpc.aio.secure_channel(settings.orchestrator, grpc.ssl_channel_credentials(roots), options)
        else:
            channel = grpc.aio.insecure_channel(settings.orchestrator, options)
        app.state.stub = pb_grpc.VideoEditServiceStub(channel)
        yield
        await channel.close()

    app = FastAPI(title="videoedit", summary="Text-prompted video object editing over HTTP", lifespan=lifespan,
                  exception_handlers={404: not_routed, 405: not_routed})
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_request: Request, err: Unauthenticated) -> Response:
        return error_response(401, "UNAUTHENTICATED", str(err))

    @app.exception_handler(grpc.RpcError)
    async def rpc_failed(_request: Request, err: grpc.RpcError) -> Response:
        return from_rpc_error(err)

    @app.exception_handler(BadRequest)
    async def bad_request(_request: Request, err: BadRequest) -> Response:
        return error_response(400, "INVALID_ARGUMENT", str(err))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.include_router(jobs.router)
    app.include_router(uploads.router)
    app.include_router(artifacts.router)
    return app


async def not_routed(request: Request, err: HTTPException) -> Response:
    """No route for this path or method: under /api/, a caller without the token learns only that
    (401), not which routes exist; otherwise FastAPI's own 404 or 405."""
    if request.url.path.startswith("/api/"):
        try:
            await require_token(request, request.app.state.settings)
        except Unauthenticated as unauthenticated:
            return error_response(401, "UNAUTHENTICATED", str(unauthenticated))
    return await http_exception_handler(request, err)
