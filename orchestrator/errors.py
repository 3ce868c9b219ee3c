"""Errors the orchestrator raises. Each VideoEditError names its gRPC status code, which the
servicer answers with (and a job that fails with one keeps its message as the `error`)."""

from __future__ import annotations


class VideoEditError(Exception):
    """Base class: `code` names the gRPC status code (grpc.StatusCode member name)."""

    code = "INTERNAL"


class InvalidArgument(VideoEditError):
    """A request field (named by `field`) has a bad value."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# --- the request cannot be served as it is ---


class Unauthenticated(VideoEditError):
    code = "UNAUTHENTICATED"  # no key, a wrong one, or a revoked one


class NotFound(VideoEditError):
    code = "NOT_FOUND"  # no such job, input file or artifact


class PermissionDenied(VideoEditError):
    code = "PERMISSION_DENIED"  # a path outside the input or output roots


class AlreadyExists(VideoEditError):
    code = "ALREADY_EXISTS"  # a job id taken by a different request


class FailedPrecondition(VideoEditError):
    code = "FAILED_PRECONDITION"  # e.g. downloading the output of an unfinished job


class DataLoss(VideoEditError):
    code = "DATA_LOSS"  # an upload cut short or not matching its SHA-256


# --- the service cannot take it now ---


class ResourceExhausted(VideoEditError):
    code = "RESOURCE_EXHAUSTED"  # queue full, upload too large, too many streams of one client


class DeadlineExceeded(VideoEditError):
    code = "DEADLINE_EXCEEDED"  # an upload that stalled longer than VIDEOEDIT_UPLOAD_IDLE_S


class Unavailable(VideoEditError):
    code = "UNAVAILABLE"  # shutting down: retry on another replica or later


class ModelServerError(Unavailable):
    """A model-server call failed after its retries (the job fails with this)."""


class ModelServerUnavailable(ModelServerError):
    """No model server answered (down, restarting, unreachable) after the retries: an outage to
    wait out. A job that meets one is queued again (with a back-off) instead of failing."""


class TrackingLost(ModelServerError):
    """The model server no longer holds a tracking session (its replica died or restarted, or the
    session was ended for room or idleness): tracking goes on in a new session."""


# --- job control flow (not errors of the request) ---


class JobCancelled(Exception):
    """Raised inside the pipeline when the job's cancel flag is seen."""


class JobInterrupted(JobCancelled):
    """The server is shutting down: the job stops and runs again from the start next time."""


class JobLost(JobCancelled):
    """Another orchestrator took the job over (this one's lease expired): stop, touch nothing."""


class JobFailed(Exception):
    """run_video_edit: the job ended FAILED; the message is the status's `error`."""
