"""The bearer credentials the gRPC services check: the orchestrator its clients' API keys (the form
and hash here; the keys live in the job store) or VIDEOEDIT_AUTH_TOKEN, the model server
VIDEOEDIT_MODEL_TOKEN (the orchestrators'; TokenCheck). A call carries `authorization: Bearer
<credential>` (the scheme in any case, RFC 7235); the health service stays open so load balancers
and orchestration can probe it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import grpc

SCHEME = "bearer"
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})


def token_matches(authorization: str, token: str) -> bool:
    """`authorization` (the metadata's value) is `Bearer <token>`, the scheme in any case; the
    token is compared in constant time, so the time taken says nothing about how much matched."""
    scheme, _, given = authorization.strip().partition(" ")
    # Both sides compared as bytes: compare_digest refuses non-ASCII str.
    return scheme.lower() == SCHEME and hmac.compare_digest(given.strip().encode(), token.encode())


# An API key (orchestrator: `videoedit-admin keys create`): "vek_<key id>_<secret>". The key id is
# public (listed, logged, named in signed links); the secret is shown once and stored only hashed.
KEY_PREFIX = "vek_"
_KEY = re.compile(r"vek_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def new_api_key() -> tuple[str, str]:
    """A new key and its id: 64 random bits of id, 256 of secret."""
    key_id = secrets.token_hex(8)
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id


def api_key_id(key: str) -> str | None:
    """The id of a key of the API key form (None: not one: e.g. a VIDEOEDIT_AUTH_TOKEN)."""
    found = _KEY.fullmatch(key)
    return found.group(1) if found else None


def api_key_hash(key: str) -> str:
    """What the job store keeps of a key. SHA-256 suffices: the secret is 256 random bits, not a
    password to be guessed."""
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(authorization: str) -> str:
    """The credential of an `authorization` value `Bearer <credential>` (the scheme in any case;
    "" without one)."""
    scheme, _, given = authorization.strip().partition(" ")
    return given.strip() if scheme.lower() == SCHEME else ""


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token` (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class TokenCheck:
    """Which calls may pass: those to OPEN_SERVICES (health, which probes must reach) and those whose
    `authorization` metadata `token_matches`. `variable`: where the token is configured, named in
    the refusal so the caller knows which token it lacks. The model server's (the orchestrator
    judges its callers with orchestrator.api.security)."""

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
