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

import mimetypes
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

from . import jobs
from .convert import BadRequest
from .deps import GatewaySettings, Orchestrator, OrchestratorDep, SettingsDep, Unauthenticated, require_token
from .errors import error_response, from_rpc_error

STATIC = Path(__file__).parent / "static"
UPLOAD_CHUNK = 1 << 20
ARTIFACTS = {"output": pb.ARTIFACT_OUTPUT_VIDEO, "mask": pb.ARTIFACT_MASK_VIDEO, "log": pb.ARTIFACT_LOG,
             "input": pb.ARTIFACT_INPUT_VIDEO}


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

    api = APIRouter(dependencies=[Depends(require_token)])

    @api.post("/api/video/upload", summary="Upload a video (the request body); returns the path jobs can use")
    async def upload(request: Request, filename: str, orchestrator: OrchestratorDep, settings: SettingsDep,
                     sha256: str = "") -> Response:
        size = request.headers.get("content-length")
        if size is None or not size.isdigit():
            return error_response(411, "LENGTH_REQUIRED", "send the video as the body, with its Content-Length")
        if int(size) > settings.max_upload_bytes:
            return error_response(413, "RESOURCE_EXHAUSTED", f"upload of {size} bytes is over the limit of "
                                  f"{settings.max_upload_bytes} bytes (VIDEOEDIT_MAX_UPLOAD_MB)")

        async def messages() -> AsyncIterator[pb.UploadVideoRequest]:
            yield pb.UploadVideoRequest(metadata=pb.UploadMetadata(filename=filename, size_bytes=int(size),
                                                                   sha256=sha256))
            async for chunk in request.stream():
                for start in range(0, len(chunk), UPLOAD_CHUNK):
                    yield pb.UploadVideoRequest(chunk=chunk[start:start + UPLOAD_CHUNK])

        reply = await orchestrator.stream("UploadVideo", messages())
        return JSONResponse({"input_video_path": reply.input_video_path, "size_bytes": reply.size_bytes,
                             "sha256": reply.sha256})

    @api.get("/api/video/artifact/{job_id}/{kind}", summary="A job's file: output, mask, log or input (Range)")
    async def artifact(job_id: str, kind: str, request: Request, orchestrator: OrchestratorDep) -> Response:
        if kind not in ARTIFACTS:
            raise BadRequest(f"kind: {kind!r} is not one of {', '.join(ARTIFACTS)}")
        ask = pb.DownloadArtifactRequest(job_id=job_id, artifact=ARTIFACTS[kind])
        wanted = _byte_range(request.headers.get("range"))
        if wanted is not None:
            start, end = wanted
            if start is None:  # "bytes=-N": the last N bytes; the size comes with a 1-byte answer
                size = await _size(orchestrator, ask)
                start, end = max(0, size - end), None
            ask.offset, ask.length = start, 0 if end is None else end - start + 1
        download = orchestrator.stream("DownloadArtifact", ask)
        try:
            first = await download.read()
        except grpc.RpcError as err:
            if wanted is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                return error_response(416, "OUT_OF_RANGE", err.details() or "")
            raise
        if first is grpc.aio.EOF:
            return error_response(502, "DATA_LOSS", "the orchestrator sent no file")
        headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'inline; filename="{first.filename}"'}
        length = first.size_bytes - ask.offset if not ask.length else min(ask.length, first.size_bytes - ask.offset)
        headers["Content-Length"] = str(length)
        status_code = 200
        if wanted is not None:
            status_code = 206
            headers["Content-Range"] = f"bytes {ask.offset}-{ask.offset + length - 1}/{first.size_bytes}"

        async def body() -> AsyncIterator[bytes]:
            reply = first
            while reply is not grpc.aio.EOF:
                yield reply.chunk
                reply = await download.read()

        media_type = mimetypes.guess_type(first.filename)[0] or "application/octet-stream"
        return StreamingResponse(body(), status_code=status_code, media_type=media_type, headers=headers)

    app.include_router(jobs.router)
    app.include_router(api)
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


def _byte_range(header: str | None) -> tuple[int | None, int | None] | None:
    """(start, end inclusive) of a one-range `bytes=` header; (None, N) for the last N bytes."""
    if not header:
        return None
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        raise BadRequest(f"Range: {header!r} is not one 'bytes=start-end' range")
    start, end = (int(v) if v else None for v in match.groups())
    if start is not None and end is not None and end < start:
        raise BadRequest(f"Range: {header!r} ends before it starts")
    return start, end


async def _size(orchestrator: Orchestrator, ask: pb.DownloadArtifactRequest) -> int:
    probe = pb.DownloadArtifactRequest(job_id=ask.job_id, artifact=ask.artifact, length=1)
    async for reply in orchestrator.stream("DownloadArtifact", probe):
        return reply.size_bytes
    return 0
