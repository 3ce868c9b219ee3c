"""VideoEditService servicer: protobuf <-> plain Python, nothing else.

The core raises VideoEditError subclasses; `_translate_errors` turns them into
gRPC status codes with the same actionable message.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc
from videoedit.v1 import wire
from videoedit.v1.gateway import UPLOAD_ACCEPTED

from ..errors import DeadlineExceeded, InvalidArgument, VideoEditError
from ..jobs.manager import JobManager
from ..jobs.tenants import Caller
from ..jobs.validation import parse_instances
from ..jobs.watchers import WatchHub
from ..request import JobStatus, ObjectEdit, VideoEditRequest, VideoEditStatus, VisualPrompt
from .limits import Stream, StreamLimits
from .security import current_caller
from .transfers import Upload, artifact_path, file_chunks, find_upload, receive_upload

T = TypeVar("T")

_DEFAULTS = VideoEditRequest(input_video_path=Path(), mask_prompt="", edit_prompt="")
_OPTIONAL_FIELDS = (
    "image_guidance_scale",
    "guidance_scale",
    "erode_kernel",
    "num_inference_steps",
    "apply_smoothing",
    "smoothing_window",
    "smoothing_alpha",
    "seed",
)


def request_from_proto(msg: pb.VideoEditRequest) -> VideoEditRequest:
    """Unset optional fields get the original worker's defaults."""
    values = {name: getattr(msg, name) if msg.HasField(name) else getattr(_DEFAULTS, name) for name in _OPTIONAL_FIELDS}
    return VideoEditRequest(
        job_id=msg.job_id,
        input_video_path=Path(msg.input_video_path),
        output_dir=Path(msg.output_dir) if msg.output_dir else None,
        mask_prompt=msg.mask_prompt,
        edit_prompt=msg.edit_prompt,
        mode=msg.mode or "video",
        max_frames=msg.max_frames if msg.HasField("max_frames") and msg.max_frames else None,
        extra=dict(msg.extra),
        objects=[
            ObjectEdit(
                o.mask_prompt,
                o.edit_prompt,
                parse_instances(f"objects[{i}].instances", o.instances, blank=True),
                tuple(visual_prompt_from_proto(v) for v in o.visual_prompts),
            )
            for i, o in enumerate(msg.objects)
        ],
        visual_prompts=[visual_prompt_from_proto(v) for v in msg.visual_prompts],
        **values,
    )


def visual_prompt_from_proto(msg: pb.VisualPrompt) -> VisualPrompt:
    box = msg.box
    return VisualPrompt(
        frame_index=msg.frame_index,
        points=tuple(wire.decode_point(p) for p in msg.points),
        box=(box.x0, box.y0, box.x1, box.y1) if msg.HasField("box") else None,
        object=msg.object if msg.HasField("object") else None,
    )


def status_to_proto(status: VideoEditStatus) -> pb.VideoEditStatus:
    msg = pb.VideoEditStatus(
        job_id=status.job_id,
        status=pb.JobStatus.Value(f"JOB_STATUS_{status.status.name}"),
        progress=status.progress,
        message=status.message or "",
        error=status.error or "",
        output_video_path=str(status.output_video_path or ""),
        mask_preview_path=str(status.mask_preview_path or ""),
        logs_path=str(status.logs_path or ""),
        output_dir=str(status.output_dir or ""),
        mask_prompt=status.mask_prompt or "",
        edit_prompt=status.edit_prompt or "",
        mode=status.mode or "",
        tenant=status.tenant,
    )
    for field in (
        "current_frame",
        "total_frames",
        "elapsed_seconds",
        "eta_seconds",
        "stage_eta_seconds",
        "objects_found",
    ):
        if getattr(status, field) is not None:
            setattr(msg, field, getattr(status, field))
    if status.media is not None:
        # Only the fields this proto knows: a status.json written by a newer release may hold more.
        known = pb.MediaSummary.DESCRIPTOR.fields_by_name
        msg.media.CopyFrom(pb.MediaSummary(**{k: v for k, v in status.media.items() if k in known}))
    for field, seconds in (("create_time", status.created_at), ("update_time", status.updated_at)):
        if seconds is not None:
            stamp = Timestamp()
            stamp.FromNanoseconds(int(seconds * 1e9))
            getattr(msg, field).CopyFrom(stamp)
    return msg


def _translate_errors(method):
    """A unary-response RPC answers a VideoEditError with the gRPC status code it names."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except VideoEditError as err:
            await context.abort(grpc.StatusCode[err.code], str(err))

    return wrapper


def _translate_stream_errors(method):
    """The same for a streaming response (an async generator)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async for message in method(self, request, context):
                yield message
        except VideoEditError as err:
            await context.abort(grpc.StatusCode[err.code], str(err))

    return wrapper


class VideoEditServicer(pb_grpc.VideoEditServiceServicer):
    """The public gRPC API (videoedit.v1.VideoEditService) of one orchestrator, on grpc.aio: a thin
    edge that turns protobuf into the plain request and status types, hands each RPC to the
    JobManager (jobs), the WatchHub (watchers) or the file transfers (UploadVideo,
    DownloadArtifact), and turns a VideoEditError into the gRPC status code it names. It holds no
    job state of its own. Blocking work (the job store, the disk) runs in `blocking`, a small pool
    shared by every call: an open stream holds no thread; `limits` bounds what a client holds open."""

    def __init__(self, jobs: JobManager, hub: WatchHub, limits: StreamLimits, blocking: Executor):
        self.jobs, self.hub, self.limits, self.blocking = jobs, hub, limits, blocking
        self.settings = jobs.settings

    @_translate_errors
    async def StartEdit(self, request, context):
        return status_to_proto(await self._call(self.jobs.start, request_from_proto(request), current_caller()))

    @_translate_stream_errors
    async def WatchStatus(self, request, context) -> AsyncIterator[pb.VideoEditStatus]:
        with self.limits.hold(context.peer(), Stream.WATCH, context.invocation_metadata() or ()):
            async for status in self.hub.watch(request.job_id, current_caller()):
                yield status_to_proto(status)

    @_translate_errors
    async def GetStatus(self, request, context):
        return status_to_proto(await self._call(self.jobs.get, request.job_id, current_caller()))

    @_translate_errors
    async def CancelEdit(self, request, context):
        return status_to_proto(await self._call(self.jobs.cancel, request.job_id, current_caller()))

    @_translate_errors
    async def ListJobs(self, request, context):
        status = (
            None
            if request.status == pb.JOB_STATUS_UNSPECIFIED
            else JobStatus[pb.JobStatus.Name(request.status).removeprefix("JOB_STATUS_")]
        )
        jobs, token = await self._call(self.jobs.list, status, request.page_size, request.page_token, current_caller())
        return pb.ListJobsResponse(jobs=[status_to_proto(s) for s in jobs], next_page_token=token)

    @_translate_errors
    async def UploadVideo(self, request_iterator, context):
        with self.limits.hold(context.peer(), Stream.UPLOAD, context.invocation_metadata() or ()):
            # Said before any message is read: a sender learns that the upload was taken (or,
            # without this header, the refusal's real status) before a write of its can fail.
            await context.send_initial_metadata(((UPLOAD_ACCEPTED, "1"),))
            messages = _arriving(request_iterator, self.settings.upload_idle_s)
            first = await anext(messages, None)
            if first is None or first.WhichOneof("content") != "metadata":
                raise InvalidArgument("metadata", "the first UploadVideoRequest must carry the metadata")
            meta = first.metadata
            folder = self.jobs.upload_dir(current_caller())
            upload = await receive_upload(
                meta.filename, meta.size_bytes, meta.sha256, _chunks(messages), self.settings, self.blocking, folder
            )
        return _upload_to_proto(upload)

    @_translate_errors
    async def FindUpload(self, request, context):
        folder = self.jobs.upload_dir(current_caller())
        return _upload_to_proto(await self._call(find_upload, request.sha256, folder))

    @_translate_stream_errors
    async def DownloadArtifact(self, request, context) -> AsyncIterator[pb.DownloadArtifactResponse]:
        with self.limits.hold(context.peer(), Stream.DOWNLOAD, context.invocation_metadata() or ()):
            if request.artifact not in _ARTIFACTS:
                choices = ", ".join(pb.Artifact.Name(a) for a in _ARTIFACTS)
                raise InvalidArgument("artifact", f"{request.artifact} is not one of {choices}")
            path, size = await self._call(
                self._artifact, request.job_id, _ARTIFACTS[request.artifact], request.object_id, current_caller()
            )
            chunks = file_chunks(path, self.blocking, request.offset, request.length)
            first = await anext(chunks, b"")  # checks the range before anything is sent
            yield pb.DownloadArtifactResponse(filename=path.name, size_bytes=size, chunk=first)
            async for chunk in chunks:
                yield pb.DownloadArtifactResponse(chunk=chunk)

    def _artifact(self, job_id: str, artifact: str, object_id: int, caller: Caller) -> tuple[Path, int]:
        """In the executor: the artifact's file and size."""
        status, input_path = self.jobs.get(job_id, caller), self.jobs.input_path(job_id, caller)
        path = artifact_path(status, artifact, self.settings, input_path, object_id)
        return path, path.stat().st_size

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.blocking, fn, *args)


def _upload_to_proto(upload: Upload) -> pb.UploadVideoResponse:
    return pb.UploadVideoResponse(input_video_path=str(upload.path), size_bytes=upload.size_bytes, sha256=upload.sha256)


_ARTIFACTS = {
    pb.ARTIFACT_OUTPUT_VIDEO: "output",
    pb.ARTIFACT_MASK_VIDEO: "mask",
    pb.ARTIFACT_LOG: "log",
    pb.ARTIFACT_INPUT_VIDEO: "input",
    pb.ARTIFACT_OBJECTS: "objects",
    pb.ARTIFACT_OBJECT_PREVIEW: "object preview",
}


async def _arriving(messages: AsyncIterator[T], idle_s: float) -> AsyncIterator[T]:
    """`messages`, each within `idle_s` of the one before: a client that stalls is cut off, so a
    stalled upload holds its temp file and its place in the limits no longer than that."""
    while True:
        try:
            async with asyncio.timeout(idle_s):
                message = await anext(messages, None)
        except TimeoutError:
            raise DeadlineExceeded(
                f"no upload message for {idle_s:g} s (VIDEOEDIT_UPLOAD_IDLE_S on the server): the upload "
                "was dropped; send it again without pausing between chunks"
            ) from None
        if message is None:
            return
        yield message


async def _chunks(messages: AsyncIterator[pb.UploadVideoRequest]) -> AsyncIterator[bytes]:
    async for message in messages:
        if message.WhichOneof("content") != "chunk":
            raise InvalidArgument("chunk", "only the first UploadVideoRequest may carry metadata")
        yield message.chunk
