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


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Checks every call's `authorization: Bearer <token>` metadata against VIDEOEDIT_AUTH_TOKEN
    (the scheme in any case, the token in constant time) before the call reaches its handler; a
    call without the right token is answered UNAUTHENTICATED, except calls to OPEN_SERVICES
    (health), which probes must reach."""

    def __init__(self, token: str):
        if not token.strip():
            raise ValueError("the auth token must not be blank")
        self._expected = token.encode()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service = handler_call_details.method.split("/")[1] if handler_call_details.method else ""
        if handler is None or service in OPEN_SERVICES:
            return handler
        given = next((v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"), "")
        if _bearer_token_is(given, self._expected):
            return handler
        return _refusal(handler)


def _bearer_token_is(header: str | bytes, expected: bytes) -> bool:
    """Whether an Authorization value is `Bearer <expected>` (RFC 9110: the scheme is case-insensitive)."""
    value = header.encode() if isinstance(header, str) else header
    scheme, _, token = value.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected)


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""

    async def deny(_request, context):
        await context.abort(
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
