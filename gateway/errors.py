"""The API's errors, always as JSON with the server's message:

{"error": {"code": "NOT_FOUND", "message": "no job 'x'"}}

gRPC status codes map to HTTP statuses here; the gateway's own refusals (415, 413, 429, ...) are
raised as ApiError, which create_app's handler turns into that JSON.
"""

from __future__ import annotations

import grpc
from fastapi.responses import JSONResponse

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DATA_LOSS: 400,  # an upload cut short or not matching its SHA-256: send it again
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,  # e.g. the output of a job that has not finished
    grpc.StatusCode.OUT_OF_RANGE: 416,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,  # queue full; a too-large upload is 413 (checked here first)
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}

# The code word of an HTTP error that did not come from the orchestrator (FastAPI's 404, 405, ...).
HTTP_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
}


class ApiError(Exception):
    """A refusal the gateway decides itself, answered as the error JSON with `status`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, HTTP_CODE.get(self.status, f"HTTP_{self.status}"), str(self), self.headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def from_rpc_error(err: grpc.RpcError) -> JSONResponse:
    code = err.code()
    message = err.details() or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        message = f"the orchestrator did not answer ({message}); retry shortly"
    headers = (
        {"Retry-After": "5"} if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) else None
    )
    return error_response(HTTP_STATUS.get(code, 502), code.name, message, headers)
