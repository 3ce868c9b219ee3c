"""Errors the core raises; the gRPC servicer maps each to its status code."""

from __future__ import annotations


class VideoEditError(Exception):
    """Base class: `code` names the gRPC status code (grpc.StatusCode member name)."""

    code = "INTERNAL"


class InvalidArgument(VideoEditError):
    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(VideoEditError):
    code = "NOT_FOUND"


class PermissionDenied(VideoEditError):
    code = "PERMISSION_DENIED"


class AlreadyExists(VideoEditError):
    code = "ALREADY_EXISTS"


class ResourceExhausted(VideoEditError):
    code = "RESOURCE_EXHAUSTED"


class ModelServerError(VideoEditError):
    """A model server call failed after its retries (the job fails with this)."""

    code = "UNAVAILABLE"


class JobCancelled(Exception):
    """Raised inside the pipeline when the job's cancel flag is seen."""


class JobInterrupted(JobCancelled):
    """The server is shutting down: the job stops and runs again from the start next time."""


class Unavailable(VideoEditError):
    code = "UNAVAILABLE"


class FailedPrecondition(VideoEditError):
    code = "FAILED_PRECONDITION"


class DataLoss(VideoEditError):
    code = "DATA_LOSS"


class JobFailed(Exception):
    """run_video_edit: the job ended FAILED; the message is the status's `error`."""
