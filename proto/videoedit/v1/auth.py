"""The bearer token both gRPC services check: the orchestrator against VIDEOEDIT_AUTH_TOKEN (its
clients), the model server against VIDEOEDIT_MODEL_TOKEN (the orchestrators). A call carries
`authorization: Bearer <token>` (the scheme in any case, RFC 7235); the health service stays open
so load balancers and orchestration can probe it.
"""

from __future__ import annotations

import hmac

import grpc

SCHEME = "bearer"
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})


def token_matches(authorization: str, token: str) -> bool:
    """`authorization` (the metadata's value) is `Bearer <token>`, the scheme in any case; the
    token is compared in constant time, so the time taken says nothing about how much matched."""
    scheme, _, given = authorization.strip().partition(" ")
    # Both sides compared as bytes: compare_digest refuses non-ASCII str.
    return scheme.lower() == SCHEME and hmac.compare_digest(given.strip().encode(), token.encode())


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token` (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Checks every call's `authorization` metadata with `token_matches` before the call reaches
    its handler; a call without the right token is answered UNAUTHENTICATED, except calls to
    OPEN_SERVICES (health), which probes must reach. `variable`: where the token is configured,
    named in the refusal so the caller knows which token it lacks."""

    def __init__(self, token: str, variable: str):
        if not token.strip():
            raise ValueError(f"{variable} must not be blank")
        self._token, self._variable = token, variable

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        service = handler_call_details.method.split("/")[1] if handler_call_details.method else ""
        if handler is None or service in OPEN_SERVICES:
            return handler
        given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if token_matches(given, self._token):
            return handler
        why = f"missing or wrong token: send the metadata 'authorization: Bearer <{self._variable}>'"
        return _refusal(handler, why)


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""

    def deny(_request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)
