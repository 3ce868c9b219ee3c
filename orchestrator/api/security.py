"""Who may call the service: an optional bearer token and optional TLS.

With VIDEOEDIT_AUTH_TOKEN set, every VideoEditService (and reflection) call must carry
`authorization: Bearer <token>` or gets UNAUTHENTICATED; the health service stays open so load
balancers and orchestration can probe it. TLS (certificate and key files) protects the token
and the media on the wire; without it, keep the port on a private network.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Checks every call's `authorization: Bearer <token>` metadata against VIDEOEDIT_AUTH_TOKEN
    (in constant time) before the call reaches its handler; a call without the right token is
    answered UNAUTHENTICATED, except calls to OPEN_SERVICES (health), which probes must reach."""

    def __init__(self, token: str):
        if not token.strip():
            raise ValueError("the auth token must not be blank")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        service = handler_call_details.method.split("/")[1] if handler_call_details.method else ""
        if handler is None or service in OPEN_SERVICES:
            return handler
        given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(given.encode(), self._expected):
            return handler
        return _refusal(handler)


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""

    def deny(_request, context):
        context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong token: send the metadata 'authorization: Bearer <VIDEOEDIT_AUTH_TOKEN>'",
        )

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


def server_credentials(cert_file: Path, key_file: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_file.read_bytes(), cert_file.read_bytes())])
