"""Who may call the service, and as whom: bearer keys and optional TLS.

Every VideoEditService call passes the CallerInterceptor, which asks an Authenticator who the
call's `authorization: Bearer <key>` metadata names (jobs.tenants.Caller) and runs the method with
that caller set (`current_caller()`); a call it names nobody for is answered UNAUTHENTICATED before
it reaches the servicer. Reflection needs a valid key too; the health service stays open so load
balancers and orchestration can probe it. With no VIDEOEDIT_AUTH_TOKEN and no API keys the
service is open and every caller is the default tenant's admin (one-user setups).
TLS (certificate and key files) protects the keys and the media on the wire; without it, keep the
port on a private network.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

import grpc

from videoedit.v1.auth import OPEN_SERVICES, api_key_hash, api_key_id, bearer, refusal, token_matches
from videoedit.v1.gateway import ADMIN_TOKEN_ID, on_behalf_of

from ..errors import Unauthenticated, VideoEditError
from ..jobs.store import JobStore
from ..jobs.tenants import OWNER, Caller

Metadata = Sequence[tuple[str, str | bytes]]

# The caller of the RPC running in this task (set by CallerInterceptor for each call; unset
# elsewhere, and then no caller is assumed: current_caller refuses).
_CALLER: ContextVar[Caller] = ContextVar("videoedit_caller")


def current_caller() -> Caller:
    """The caller of the RPC being handled (read it on the event loop, before handing work to a
    thread: executors do not carry context variables)."""
    try:
        return _CALLER.get()
    except LookupError:
        raise Unauthenticated("this call passed no authentication") from None


class Authenticator(Protocol):
    """Who a call is, from its metadata."""

    refusal: str  # what a refused caller is told (which key to send)

    def caller(self, metadata: Metadata) -> Caller | None:
        """The caller the metadata names; None: refused. May block (a job store lookup)."""
        ...


class KeyAuthenticator:
    """Who a call is, by the key it presents:
    - an API key (`vek_<id>_<secret>`, videoedit-admin keys create): its tenant, as a user or an
      admin by the key's role. The key is read from the store on every call, not cached, so a
      revocation takes effect at once on every orchestrator sharing the store; its hash is
      compared in constant time.
    - VIDEOEDIT_AUTH_TOKEN: the default tenant's admin (OWNER), the one key of one-machine setups.
    - the trusted gateway (VIDEOEDIT_GATEWAY_TOKEN) calling on behalf of an API key id (a signed
      link): the caller of that key while it is active (gateway.ADMIN_TOKEN_ID: OWNER while an
      auth token is configured); the gateway checked the link, the key's state is checked here.
    With no auth token and no API key ever made, the service is open: every caller is OWNER. The
    first key made ends that at once (the store is asked until it has a key; from then on, never
    again: keys are only revoked, never deleted)."""

    refusal = (
        "missing, wrong or revoked key: send the metadata "
        "'authorization: Bearer <API key from videoedit-admin keys create, or VIDEOEDIT_AUTH_TOKEN>'"
    )

    def __init__(self, store: JobStore, auth_token: str | None, gateway_token: str | None):
        self._store, self._token, self._gateway_token = store, auth_token, gateway_token
        self._keys_exist = False  # once True, stays True

    def caller(self, metadata: Metadata) -> Caller | None:
        if not self._token and not self.keys_exist():
            return OWNER
        on_behalf = on_behalf_of(metadata, self._gateway_token)
        if on_behalf is not None:
            if on_behalf == ADMIN_TOKEN_ID:
                return OWNER if self._token else None
            found = self._store.active_key(on_behalf)
            return found[0].caller if found else None
        given = authorization(metadata)
        if self._token and token_matches(given, self._token):
            return OWNER
        key = bearer(given)
        key_id = api_key_id(key)
        if key_id is None:
            return None
        found = self._store.active_key(key_id)
        # Both hashes are hex: compare_digest takes them as ASCII str.
        if found is None or not hmac.compare_digest(api_key_hash(key), found[1]):
            return None
        return found[0].caller

    def keys_exist(self) -> bool:
        """Whether the store has a key (asked until it has one)."""
        self._keys_exist = self._keys_exist or self._store.has_keys()
        return self._keys_exist

    def mode(self) -> str:
        """How callers authenticate, for the startup log."""
        keys = self.keys_exist()
        if keys and self._token:
            return "API keys and token"
        return "API keys" if keys else "token" if self._token else "no auth"


def authorization(metadata: Metadata) -> str:
    """The `authorization` metadata's value ("" without one)."""
    given = next((v for k, v in metadata if k == "authorization"), "")
    return given if isinstance(given, str) else given.decode(errors="replace")


class CallerInterceptor(grpc.aio.ServerInterceptor):
    """Runs every call (but health's) as the caller `authenticator` names, or answers it
    UNAUTHENTICATED by a handler of the same shape. The lookup runs in `blocking` (it may ask the
    job store); a store that cannot answer makes the call UNAVAILABLE."""

    def __init__(self, authenticator: Authenticator, blocking: Executor):
        self._authenticator, self._blocking = authenticator, blocking

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service = (handler_call_details.method or "/").split("/")[1]  # "/package.Service/Method"
        if handler is None or service in OPEN_SERVICES:
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        loop = asyncio.get_running_loop()
        try:
            caller = await loop.run_in_executor(self._blocking, self._authenticator.caller, metadata)
        except VideoEditError as err:  # the job store cannot be asked now (UNAVAILABLE: retry)
            return _answer(handler, grpc.StatusCode[err.code], str(err))
        if caller is None:
            return _answer(handler, grpc.StatusCode.UNAUTHENTICATED, self._authenticator.refusal)
        return _as_caller(handler, caller)


def _answer(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s shape that answers `code` with `message` without running it."""

    async def deny(_request, context):
        await context.abort(code, message)

    return refusal(handler, deny)


def _as_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    """`handler`, its method run with `caller` as the current caller."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary or handler.stream_unary:
        behaviour: Callable = handler.unary_unary or handler.stream_unary

        async def answer(request, context):
            _CALLER.set(caller)
            return await behaviour(request, context)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(answer, **serializers)
    streaming: Callable = handler.unary_stream or handler.stream_stream

    async def stream(request, context):
        _CALLER.set(caller)
        async for message in streaming(request, context):
            yield message

    make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return make(stream, **serializers)


def server_credentials(cert_file: Path, key_file: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_file.read_bytes(), cert_file.read_bytes())])
