"""The upload routes: a video as the request body, written on to the orchestrator's UploadVideo in
chunks; the answer names the server path that jobs then give as `input_video_path`. And the
look-up of a stored upload by its SHA-256 (FindUpload), so a client that hashes its file first
sends it once: the orchestrator stores the same content once.

The body must come with its Content-Length and a type of its own (not one a form or a no-cors
page can send: body.py). A body that sends nothing for VIDEOEDIT_UPLOAD_IDLE_S is 408, and the
UploadVideo call is cancelled, so a stalled client holds nothing on the orchestrator; how many
uploads one client may have open at once is limits.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1.gateway import UPLOAD_ACCEPTED

from .body import check_upload_type
from .deps import OrchestratorDep, SettingsDep, Text, api_router
from .errors import ApiError, error_response

UPLOAD_CHUNK = 1 << 20

router = api_router()


@router.post("/upload", summary="Upload a video (the request body); returns the path jobs can use")
async def upload(
    request: Request, filename: Text, orchestrator: OrchestratorDep, settings: SettingsDep, sha256: Text = ""
) -> Response:
    check_upload_type(request)
    size = request.headers.get("content-length", "")
    if not (size.isascii() and size.isdigit()):
        return error_response(411, "LENGTH_REQUIRED", "send the video as the body, with its Content-Length")
    if int(size) > settings.max_upload_bytes:
        return error_response(
            413,
            "RESOURCE_EXHAUSTED",
            f"upload of {size} bytes is over the limit of {settings.max_upload_bytes} bytes (VIDEOEDIT_MAX_UPLOAD_MB)",
        )
    metadata = pb.UploadMetadata(filename=filename, size_bytes=int(size), sha256=sha256)
    call = orchestrator.stream("UploadVideo")
    try:
        await _send(call, metadata, _body(request, settings.limits.upload_idle_s))
        reply = await call
    finally:
        call.cancel()  # nothing once it ended; else (a stalled or vanished client) the orchestrator stops too
    return JSONResponse(_upload_dict(reply))


@router.get("/uploads/{sha256}", summary="The stored upload with this SHA-256 (404: none; upload the file)")
async def find(sha256: Text, orchestrator: OrchestratorDep) -> dict[str, Any]:
    return _upload_dict(await orchestrator.call("FindUpload", pb.FindUploadRequest(sha256=sha256)))


def _upload_dict(reply: pb.UploadVideoResponse) -> dict[str, Any]:
    return {"input_video_path": reply.input_video_path, "size_bytes": reply.size_bytes, "sha256": reply.sha256}


async def _send(call: grpc.aio.StreamUnaryCall, metadata: pb.UploadMetadata, body: AsyncIterator[bytes]) -> None:
    """The metadata, then the body in chunks of at most UPLOAD_CHUNK bytes; first, whether the
    orchestrator took the upload at all. A refusal (its per-client limits) ends the call before
    any message is read; a write racing it would fail with a local INTERNAL error and hide the
    refusal's status, so the refusal is awaited and raised as it is (429, not 502)."""
    if UPLOAD_ACCEPTED not in dict(await call.initial_metadata() or ()):
        await call  # raises the refusal's status
    try:
        await call.write(pb.UploadVideoRequest(metadata=metadata))
        async for chunk in body:
            for start in range(0, len(chunk), UPLOAD_CHUNK):
                await call.write(pb.UploadVideoRequest(chunk=chunk[start : start + UPLOAD_CHUNK]))
        await call.done_writing()
    except asyncio.InvalidStateError:
        pass  # the orchestrator ended the call early (a refusal): awaiting the call raises its error


async def _body(request: Request, idle_s: float) -> AsyncIterator[bytes]:
    """The request body's chunks; 408 when the client sends nothing for `idle_s` seconds."""
    chunks = request.stream()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ApiError(
                408, f"the upload sent nothing for {idle_s:g} s (VIDEOEDIT_UPLOAD_IDLE_S); send it again"
            ) from None
        yield chunk
