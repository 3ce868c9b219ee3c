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
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

import grpc

from videoedit.v1.auth import OPEN_SERVICES, refusal, token_matches

from ..errors import Unauthenticated
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


class TokenAuthenticator:
    """One-user setups: VIDEOEDIT_AUTH_TOKEN (the default tenant's admin) or, without it, nobody
    is asked for anything."""

    def __init__(self, token: str | None):
        self._token = token
        self.refusal = "missing or wrong token: send the metadata 'authorization: Bearer <VIDEOEDIT_AUTH_TOKEN>'"

    def caller(self, metadata: Metadata) -> Caller | None:
        if not self._token:
            return OWNER
        return OWNER if token_matches(authorization(metadata), self._token) else None


def authorization(metadata: Metadata) -> str:
    """The `authorization` metadata's value ("" without one)."""
    given = next((v for k, v in metadata if k == "authorization"), "")
    return given if isinstance(given, str) else given.decode(errors="replace")


class CallerInterceptor(grpc.aio.ServerInterceptor):
    """Runs every call (but health's) as the caller `authenticator` names, or answers it
    UNAUTHENTICATED by a handler of the same shape. The lookup runs in `blocking` (it may ask the
    job store)."""

    def __init__(self, authenticator: Authenticator, blocking: Executor):
        self._authenticator, self._blocking = authenticator, blocking

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service = (handler_call_details.method or "/").split("/")[1]  # "/package.Service/Method"
        if handler is None or service in OPEN_SERVICES:
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        loop = asyncio.get_running_loop()
        caller = await loop.run_in_executor(self._blocking, self._authenticator.caller, metadata)
        if caller is None:
            message = self._authenticator.refusal

            async def deny(_request, context):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

            return refusal(handler, deny)
        return _as_caller(handler, caller)


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
