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


class TokenCheck:
    """Which calls may pass: those to OPEN_SERVICES (health, which probes must reach) and those whose
    `authorization` metadata `token_matches`. `variable`: where the token is configured, named in
    the refusal so the caller knows which token it lacks. Shared by the sync interceptor here (the
    model server) and the orchestrator's grpc.aio one."""

    def __init__(self, token: str, variable: str):
        if not token.strip():
            raise ValueError(f"{variable} must not be blank")
        self._token = token
        self.refusal = f"missing or wrong token: send the metadata 'authorization: Bearer <{variable}>'"

    def admits(self, details: grpc.HandlerCallDetails) -> bool:
        service = details.method.split("/")[1] if details.method else ""
        if service in OPEN_SERVICES:
            return True
        given = next((v for k, v in details.invocation_metadata or () if k == "authorization"), "")
        return token_matches(given if isinstance(given, str) else given.decode(errors="replace"), self._token)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Lets a call reach its handler only when its TokenCheck admits it; any other call is answered
    UNAUTHENTICATED by a handler of the same shape."""

    def __init__(self, token: str, variable: str):
        self._check = TokenCheck(token, variable)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or self._check.admits(handler_call_details):
            return handler

        def deny(_request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, self._check.refusal)

        return refusal(handler, deny)


def refusal(handler: grpc.RpcMethodHandler, deny) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` (streaming or not, each way) that runs `deny`."""
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)
