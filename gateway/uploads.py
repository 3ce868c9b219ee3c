"""The upload route: a video as the request body, passed on to the orchestrator's UploadVideo in
chunks; the answer names the server path that jobs then give as `input_video_path`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from videoedit.v1 import video_edit_pb2 as pb

from .deps import OrchestratorDep, SettingsDep, api_router
from .errors import error_response

UPLOAD_CHUNK = 1 << 20

router = api_router()


@router.post("/upload", summary="Upload a video (the request body); returns the path jobs can use")
async def upload(
    request: Request, filename: str, orchestrator: OrchestratorDep, settings: SettingsDep, sha256: str = ""
) -> Response:
    size = request.headers.get("content-length")
    if size is None or not size.isdigit():
        return error_response(411, "LENGTH_REQUIRED", "send the video as the body, with its Content-Length")
    if int(size) > settings.max_upload_bytes:
        return error_response(
            413,
            "RESOURCE_EXHAUSTED",
            f"upload of {size} bytes is over the limit of {settings.max_upload_bytes} bytes (VIDEOEDIT_MAX_UPLOAD_MB)",
        )
    metadata = pb.UploadMetadata(filename=filename, size_bytes=int(size), sha256=sha256)
    reply = await orchestrator.stream("UploadVideo", _messages(metadata, request.stream()))
    return JSONResponse(
        {"input_video_path": reply.input_video_path, "size_bytes": reply.size_bytes, "sha256": reply.sha256}
    )


async def _messages(metadata: pb.UploadMetadata, body: AsyncIterator[bytes]) -> AsyncIterator[pb.UploadVideoRequest]:
    """The metadata, then the body in chunks of at most UPLOAD_CHUNK bytes."""
    yield pb.UploadVideoRequest(metadata=metadata)
    async for chunk in body:
        for start in range(0, len(chunk), UPLOAD_CHUNK):
            yield pb.UploadVideoRequest(chunk=chunk[start : start + UPLOAD_CHUNK])
