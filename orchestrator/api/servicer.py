"""VideoEditService servicer: protobuf <-> plain Python, nothing else.

The core raises VideoEditError subclasses; `_translate_errors` turns them into
gRPC status codes with the same actionable message.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

from ..errors import InvalidArgument, VideoEditError
from ..jobs.manager import JobManager
from ..request import JobStatus, VideoEditRequest, VideoEditStatus
from .transfers import artifact_path, file_chunks, receive_upload

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
        **values,
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
    )
    if status.current_frame is not None:
        msg.current_frame = status.current_frame
    if status.total_frames is not None:
        msg.total_frames = status.total_frames
    for field, seconds in (("create_time", status.created_at), ("update_time", status.updated_at)):
        if seconds is not None:
            stamp = Timestamp()
            stamp.FromNanoseconds(int(seconds * 1e9))
            getattr(msg, field).CopyFrom(stamp)
    return msg


def _translate_errors(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except VideoEditError as err:
            context.abort(grpc.StatusCode[err.code], str(err))

    return wrapper


class VideoEditServicer(pb_grpc.VideoEditServiceServicer):
    """The public gRPC API (videoedit.v1.VideoEditService) of one orchestrator: a thin edge that
    turns protobuf into the plain request and status types, hands each RPC to the JobManager
    (jobs) or to the file transfers (UploadVideo, DownloadArtifact), and turns a VideoEditError
    into the gRPC status code it names. It holds no job state of its own."""

    def __init__(self, jobs: JobManager):
        self.jobs = jobs
        self.settings = jobs.settings

    @_translate_errors
    def StartEdit(self, request, context):
        return status_to_proto(self.jobs.start(request_from_proto(request)))

    def WatchStatus(self, request, context) -> Iterator[pb.VideoEditStatus]:
        try:
            for status in self.jobs.watch(request.job_id, active=context.is_active):
                yield status_to_proto(status)
        except VideoEditError as err:
            context.abort(grpc.StatusCode[err.code], str(err))

    @_translate_errors
    def GetStatus(self, request, context):
        return status_to_proto(self.jobs.get(request.job_id))

    @_translate_errors
    def CancelEdit(self, request, context):
        return status_to_proto(self.jobs.cancel(request.job_id))

    @_translate_errors
    def ListJobs(self, request, context):
        status = (
            None
            if request.status == pb.JOB_STATUS_UNSPECIFIED
            else JobStatus[pb.JobStatus.Name(request.status).removeprefix("JOB_STATUS_")]
        )
        jobs, token = self.jobs.list(status, request.page_size, request.page_token)
        return pb.ListJobsResponse(jobs=[status_to_proto(s) for s in jobs], next_page_token=token)

    @_translate_errors
    def UploadVideo(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("content") != "metadata":
            raise InvalidArgument("metadata", "the first UploadVideoRequest must carry the metadata")
        meta = first.metadata
        upload = receive_upload(meta.filename, meta.size_bytes, meta.sha256, _chunks(request_iterator), self.settings)
        return pb.UploadVideoResponse(
            input_video_path=str(upload.path), size_bytes=upload.size_bytes, sha256=upload.sha256
        )

    def DownloadArtifact(self, request, context) -> Iterator[pb.DownloadArtifactResponse]:
        try:
            if request.artifact not in _ARTIFACTS:
                raise InvalidArgument(
                    "artifact",
                    "choose ARTIFACT_OUTPUT_VIDEO, ARTIFACT_MASK_VIDEO, ARTIFACT_LOG or ARTIFACT_INPUT_VIDEO",
                )
            artifact = _ARTIFACTS[request.artifact]
            path = artifact_path(
                self.jobs.get(request.job_id), artifact, self.settings, self.jobs.input_path(request.job_id)
            )
            chunks = file_chunks(path, request.offset, request.length)
            first = next(chunks, b"")  # checks the range before anything is sent
        except VideoEditError as err:
            context.abort(grpc.StatusCode[err.code], str(err))
        yield pb.DownloadArtifactResponse(filename=path.name, size_bytes=path.stat().st_size, chunk=first)
        for chunk in chunks:
            yield pb.DownloadArtifactResponse(chunk=chunk)


_ARTIFACTS = {
    pb.ARTIFACT_OUTPUT_VIDEO: "output",
    pb.ARTIFACT_MASK_VIDEO: "mask",
    pb.ARTIFACT_LOG: "log",
    pb.ARTIFACT_INPUT_VIDEO: "input",
}


def _chunks(messages) -> Iterator[bytes]:
    for message in messages:
        if message.WhichOneof("content") != "chunk":
            raise InvalidArgument("chunk", "only the first UploadVideoRequest may carry metadata")
        yield message.chunk
