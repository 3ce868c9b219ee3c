"""The HTTP API and the web page, over the orchestrator's gRPC API (no job state here): the
FastAPI app, which opens the channel to the orchestrator and maps errors to HTTP statuses.

Routes (JSON unless said otherwise; OpenAPI at /openapi.json, docs at /docs), from the routers in
jobs.py, uploads.py, artifacts.py, links.py and page.py:

    POST /api/video/edit                      start a job (the original worker's REST example)
    GET  /api/video/status/{job_id}           its status: the original worker's status.to_dict()
    GET  /api/video/events/{job_id}           Server-Sent Events: every status change to the end
    POST /api/video/cancel/{job_id}           cancel it
    GET  /api/video/jobs                      jobs, newest first (?status=&page_size=&page_token=)
    POST /api/video/upload?filename=NAME      the request body is the video; -> its server path
    GET  /api/video/artifact/{job_id}/{kind}  output | mask | log | input | objects, with HTTP Range
    GET  /api/video/artifact/{job_id}/object/{object_id}  one tracked object's preview (PNG)
    POST /api/video/links/{job_id}            {"for": "events" | kind | "object"} -> a signed, short-lived URL
    GET  /api/video/uploads/{sha256}          a stored upload with this SHA-256 (404: none)
    GET  /                                    the web page (and /static/...); /jobs/{job_id}: a job's page
    GET  /docs                                Swagger UI, from the gateway's own files (/vendor/...)
    GET  /healthz                             for probes

With VIDEOEDIT_AUTH_TOKEN set, /api calls need `Authorization: Bearer <token>`, or, for a GET, a
signed link (for <video> and EventSource, which cannot send headers); the token is passed on to
the orchestrator, which checks it too. Around the routes: the Host/Origin check and the security
headers (guards.py) and the per-client limits (limits.py); POSTs take application/json only
(body.py); every error, FastAPI's own included, is the error JSON (errors.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

from . import artifacts, jobs, links, page, uploads
from .deps import GatewaySettings, Unauthenticated, get_credential
from .errors import HTTP_CODE, ApiError, error_response, from_rpc_error
from .guards import CheckOrigin, SecurityHeaders
from .limits import LimitConcurrency
from .logs import redact_access_log

__all__ = ["GatewaySettings", "create_app"]


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway: the channel to the orchestrator opens when the app starts and closes when it stops."""
    app = FastAPI(
        title="videoedit",
        summary="Text-prompted video object editing over HTTP",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        docs_url=None,  # page.py's /docs: Swagger UI from this gateway's own files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.mount("/vendor/swagger-ui", page.swagger_files(), name="swagger-ui")
    for routes in (page, jobs, uploads, artifacts, links):
        app.include_router(routes.router)
    # The last added runs first: the Host/Origin check, then the limits; the headers on every answer.
    app.add_middleware(LimitConcurrency, limits=settings.limits)
    app.add_middleware(CheckOrigin, origins=settings.allowed_origins)
    app.add_middleware(SecurityHeaders)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: the orchestrator's stub on `app.state` (deps.get_orchestrator hands it
    out), and the access log redacted (logs.py; uvicorn configured its loggers before this runs)."""
    redact_access_log()
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


async def refused(_request: Request, err: ApiError) -> Response:
    return err.response()


async def invalid_parameter(_request: Request, err: RequestValidationError) -> Response:
    """A path or query parameter of the wrong type, out of range or missing: 400 naming it (not
    FastAPI's 422 shape)."""
    problems = [f"{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}{_given(e)}" for e in err.errors()]
    return error_response(400, "INVALID_ARGUMENT", "; ".join(problems))


def _given(error: dict) -> str:
    return "" if error.get("input") is None else f" (given {error['input']!r})"


async def http_error(request: Request, err: HTTPException) -> Response:
    """FastAPI's and Starlette's own errors (no route for this path or method, ...) as the error
    JSON. Under /api/, a caller without the token learns only that (401), not which routes exist."""
    if request.url.path.startswith("/api/"):
        try:
            await get_credential(request, request.app.state.settings)
        except Unauthenticated as missing:
            return await unauthenticated(request, missing)
    return error_response(err.status_code, HTTP_CODE.get(err.status_code, f"HTTP_{err.status_code}"), str(err.detail))


async def crashed(_request: Request, err: Exception) -> Response:
    """A bug: logged with its traceback by the server; the client gets the error JSON."""
    logging.getLogger("videoedit.web").error("unexpected error: %r", err)
    return error_response(500, "INTERNAL", "the gateway failed on this request; see its log")


EXCEPTION_HANDLERS = {
    Unauthenticated: unauthenticated,
    grpc.RpcError: rpc_failed,
    ApiError: refused,
    RequestValidationError: invalid_parameter,
    HTTPException: http_error,
    Exception: crashed,
}
