"""The download routes: a job's files (output, mask, log, input, objects) and one object's preview
from the orchestrator's DownloadArtifact, streamed, with one HTTP byte range (206 and
Content-Range; 416, with `Content-Range: bytes */SIZE`, for a range that is not in the file).

A file is served as what its kind says it is, never as its name says: the videos as video/mp4
(a single-frame job's output and mask, which are PNG pictures, as image/png) inline, a preview as
image/png inline, the log and the objects list (JSON) as text/plain and as attachments: a file is
only ever video/mp4, image/png or text/plain, and an attachment unless it is a video or a picture
(the page fetches the objects list and parses it, which an attachment does not hinder). With
nosniff (guards.py) no browser takes any of them for a page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import grpc
from fastapi import Path, Request
from fastapi.responses import Response, StreamingResponse

from videoedit.v1 import video_edit_pb2 as pb

from .convert import BadRequest
from .deps import Orchestrator, OrchestratorDep, Text, api_router
from .errors import ApiError, error_response

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Kind:
    artifact: int  # pb.Artifact
    media_type: str
    inline: bool  # shown in the page (<video>, <img>) rather than saved
    may_be_png: bool = False  # a single-frame job's output and mask are pictures

    def media_type_of(self, head: bytes) -> str:
        """The type to send for a file of this kind that starts with `head`."""
        return "image/png" if self.may_be_png and head.startswith(PNG_SIGNATURE) else self.media_type


ARTIFACTS = {
    "output": Kind(pb.ARTIFACT_OUTPUT_VIDEO, "video/mp4", inline=True, may_be_png=True),
    "mask": Kind(pb.ARTIFACT_MASK_VIDEO, "video/mp4", inline=True, may_be_png=True),
    "log": Kind(pb.ARTIFACT_LOG, "text/plain; charset=utf-8", inline=False),
    "input": Kind(pb.ARTIFACT_INPUT_VIDEO, "video/mp4", inline=True),
    # {job_id}_objects.json: the tracked objects (a masks or video job's), for the page to list
    "objects": Kind(pb.ARTIFACT_OBJECTS, "text/plain; charset=utf-8", inline=False),
}
PREVIEW = Kind(pb.ARTIFACT_OBJECT_PREVIEW, "image/png", inline=True)

# An object's id in {job_id}_objects.json: 1-based, an int32 on the wire.
ObjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = api_router()


@router.get("/artifact/{job_id}/{kind}", summary="A job's file: output, mask, log, input or objects (Range)")
async def artifact(job_id: Text, kind: str, request: Request, orchestrator: OrchestratorDep) -> Response:
    if kind not in ARTIFACTS:
        raise BadRequest(f"kind: {kind!r} is not one of {', '.join(ARTIFACTS)}")
    spec = ARTIFACTS[kind]
    return await _serve(orchestrator, pb.DownloadArtifactRequest(job_id=job_id, artifact=spec.artifact), spec, request)


@router.get("/artifact/{job_id}/object/{object_id}", summary="One tracked object's preview: a PNG (Range)")
async def object_preview(
    job_id: Text, object_id: ObjectId, request: Request, orchestrator: OrchestratorDep
) -> Response:
    ask = pb.DownloadArtifactRequest(job_id=job_id, artifact=PREVIEW.artifact, object_id=object_id)
    return await _serve(orchestrator, ask, PREVIEW, request)


async def _serve(orchestrator: Orchestrator, ask: pb.DownloadArtifactRequest, spec: Kind, request: Request) -> Response:
    """The file `ask` names, or the range of it the request's Range header asks for, as `spec` says."""
    wanted = _byte_range(request.headers.get("range"))
    head = b""
    if wanted is not None:
        size, head = await _head(orchestrator, ask)
        ask.offset, ask.length = _in_file(wanted, size)
    download = orchestrator.stream("DownloadArtifact", ask)
    first = await download.read()
    if first is grpc.aio.EOF:
        return error_response(502, "DATA_LOSS", "the orchestrator sent no file")
    status_code, headers = _answer(ask, first, ranged=wanted is not None, inline=spec.inline)
    media_type = spec.media_type_of(head if wanted is not None else first.chunk)
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


def _in_file(wanted: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    """The (offset, length) of the range in a file of `size` bytes; 416 when none of it is in there
    (a start at or past the end, the last 0 bytes, any range of an empty file)."""
    start, end = wanted
    if start is None:  # the last `end` bytes
        start, end = max(0, size - end), size - 1 if end else -1
    end = size - 1 if end is None else min(end, size - 1)
    if start >= size or end < start:
        raise ApiError(
            416, f"Range: no byte of it is in the file of {size} bytes", {"Content-Range": f"bytes */{size}"}
        )
    return start, end - start + 1


async def _head(orchestrator: Orchestrator, ask: pb.DownloadArtifactRequest) -> tuple[int, bytes]:
    """The file's size and its first bytes, which come with a short first answer."""
    first_bytes = pb.DownloadArtifactRequest()
    first_bytes.CopyFrom(ask)  # the same file (an object preview's id included)
    first_bytes.length = len(PNG_SIGNATURE)
    probe = orchestrator.stream("DownloadArtifact", first_bytes)
    try:
        reply = await probe.read()
    finally:
        probe.cancel()
    return (0, b"") if reply is grpc.aio.EOF else (reply.size_bytes, reply.chunk)


def _answer(
    ask: pb.DownloadArtifactRequest, first: pb.DownloadArtifactResponse, ranged: bool, inline: bool
) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers for the file (its first reply) or the range of it that `ask` names."""
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", first.filename) or "file"  # the name comes from the uploader
    disposition = "inline" if inline else "attachment"
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'{disposition}; filename="{filename}"'}
    length = first.size_bytes - ask.offset if not ask.length else min(ask.length, first.size_bytes - ask.offset)
    headers["Content-Length"] = str(length)
    if not ranged:
        return 200, headers
    headers["Content-Range"] = f"bytes {ask.offset}-{ask.offset + length - 1}/{first.size_bytes}"
    return 206, headers


async def _chunks(download: Any, first: pb.DownloadArtifactResponse) -> AsyncIterator[bytes]:
    reply = first
    try:
        while reply is not grpc.aio.EOF:
            yield reply.chunk
            reply = await download.read()
    finally:
        download.cancel()  # the client went away: stop the orchestrator's side too
