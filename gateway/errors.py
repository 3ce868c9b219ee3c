"""gRPC status codes as HTTP statuses, with the server's message, as JSON:

{"error": {"code": "NOT_FOUND", "message": "no job 'x'"}}
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
