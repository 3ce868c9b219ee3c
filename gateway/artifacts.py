"""The download route: a job's files (output, mask, log, input) from the orchestrator's
DownloadArtifact, streamed, with one HTTP byte range (206 and Content-Range; 416 outside the file)."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from videoedit.v1 import video_edit_pb2 as pb

from .convert import BadRequest
from .deps import Orchestrator, OrchestratorDep, api_router
from .errors import error_response

ARTIFACTS = {
    "output": pb.ARTIFACT_OUTPUT_VIDEO,
    "mask": pb.ARTIFACT_MASK_VIDEO,
    "log": pb.ARTIFACT_LOG,
    "input": pb.ARTIFACT_INPUT_VIDEO,
}

router = api_router()


@router.get("/artifact/{job_id}/{kind}", summary="A job's file: output, mask, log or input (Range)")
async def artifact(job_id: str, kind: str, request: Request, orchestrator: OrchestratorDep) -> Response:
    if kind not in ARTIFACTS:
        raise BadRequest(f"kind: {kind!r} is not one of {', '.join(ARTIFACTS)}")
    ask = pb.DownloadArtifactRequest(job_id=job_id, artifact=ARTIFACTS[kind])
    wanted = _byte_range(request.headers.get("range"))
    if wanted is not None:
        await _ask_for_range(orchestrator, ask, wanted)
    download = orchestrator.stream("DownloadArtifact", ask)
    try:
        first = await download.read()
    except grpc.RpcError as err:
        if wanted is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return error_response(416, "OUT_OF_RANGE", err.details() or "")
        raise
    if first is grpc.aio.EOF:
        return error_response(502, "DATA_LOSS", "the orchestrator sent no file")
    status_code, headers = _answer(ask, first, ranged=wanted is not None)
    media_type = mimetypes.guess_type(first.filename)[0] or "application/octet-stream"
    return StreamingResponse(_chunks(download, first), status_code=status_code, media_type=media_type, headers=headers)


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


async def _ask_for_range(
    orchestrator: Orchestrator, ask: pb.DownloadArtifactRequest, wanted: tuple[int | None, int | None]
) -> None:
    """Sets `ask`'s offset and length to the range; for "bytes=-N" (the last N bytes) it first asks
    for the file's size."""
    start, end = wanted
    if start is None:
        size = await _size(orchestrator, ask)
        start, end = max(0, size - end), None
    ask.offset, ask.length = start, 0 if end is None else end - start + 1


async def _size(orchestrator: Orchestrator, ask: pb.DownloadArtifactRequest) -> int:
    """The file's size, which comes with a 1-byte answer."""
    probe = pb.DownloadArtifactRequest(job_id=ask.job_id, artifact=ask.artifact, length=1)
    async for reply in orchestrator.stream("DownloadArtifact", probe):
        return reply.size_bytes
    return 0


def _answer(
    ask: pb.DownloadArtifactRequest, first: pb.DownloadArtifactResponse, ranged: bool
) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers for the file (its first reply) or the range of it that `ask` names."""
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'inline; filename="{first.filename}"'}
    length = first.size_bytes - ask.offset if not ask.length else min(ask.length, first.size_bytes - ask.offset)
    headers["Content-Length"] = str(length)
    if not ranged:
        return 200, headers
    headers["Content-Range"] = f"bytes {ask.offset}-{ask.offset + length - 1}/{first.size_bytes}"
    return 206, headers


async def _chunks(download: Any, first: pb.DownloadArtifactResponse) -> AsyncIterator[bytes]:
    reply = first
    while reply is not grpc.aio.EOF:
        yield reply.chunk
        reply = await download.read()
