"""What the routes are handed, as FastAPI dependencies: the settings, the token check (a bearer
token, or a signed link), the orchestrator (its gRPC stub, calling with the caller's token), and
the types of path and query parameters (checked before a route runs: 400 naming the parameter).

`create_app` keeps the settings and the stub on `app.state`; routes get them only through here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator

from videoedit.v1 import video_edit_pb2_grpc as pb_grpc
from videoedit.v1.gateway import forwarding_metadata

from . import signing
from .limits import ClientLimits

CALL_TIMEOUT_S = 30.0  # each unary call; streams (events, uploads, downloads) last as long as they need

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway reaches the orchestrator and what it asks of HTTP clients (cli.py reads them
    from the environment)."""

    orchestrator: str = "localhost:50051"  # VIDEOEDIT_SERVER
    token: str = ""  # VIDEOEDIT_AUTH_TOKEN: required from HTTP clients and passed on
    tls_ca: str = ""  # VIDEOEDIT_TLS_CA: the orchestrator's CA ("system": the system's)
    max_upload_bytes: int = 2 << 30  # VIDEOEDIT_MAX_UPLOAD_MB
    max_body_bytes: int = 1 << 20  # VIDEOEDIT_HTTP_MAX_BODY_KB: a JSON body
    # VIDEOEDIT_HTTP_ALLOWED_ORIGINS (cli.py: by default the gateway's own, guards.allowed_origins)
    allowed_origins: tuple[str, ...] = ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000")
    link_ttl_s: float = 300.0  # VIDEOEDIT_HTTP_LINK_TTL_S: how long a signed link works
    # VIDEOEDIT_GATEWAY_TOKEN: the secret shared with the orchestrator, sent with each caller's
    # address so the orchestrator's per-client limits count that caller, not the gateway as one.
    gateway_token: str = ""
    limits: ClientLimits = field(default_factory=ClientLimits)


class Unauthenticated(Exception):
    """An /api call without the gateway's token (-> 401)."""

    def __init__(self) -> None:
        super().__init__(
            "missing or wrong token: send 'Authorization: Bearer <VIDEOEDIT_AUTH_TOKEN>', "
            "or use a link from POST /api/video/links/{job_id} (expired links need a new one)"
        )


@dataclass(frozen=True)
class Orchestrator:
    """The orchestrator's VideoEditService as one HTTP request sees it: every call carries the token
    that `get_orchestrator` chose for that request."""

    stub: pb_grpc.VideoEditServiceStub
    metadata: Metadata

    async def call(self, rpc: str, message: Any) -> Any:
        """One unary call, within CALL_TIMEOUT_S."""
        return await getattr(self.stub, rpc)(message, timeout=CALL_TIMEOUT_S, metadata=self.metadata)

    def stream(self, rpc: str, request: Any = None) -> Any:
        """A streaming call (no deadline); `request` is a message or, for client streams, an
        iterator or None (then the caller writes the messages: call.write, call.done_writing)."""
        return getattr(self.stub, rpc)(request, metadata=self.metadata)


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


async def require_token(request: Request, settings: SettingsDep) -> None:
    """With a token set, the caller must send it, `Authorization: Bearer <token>` (the scheme in
    any case), or call a GET with a link signed for this path that has not expired (signing.py)."""
    if not settings.token:
        return
    if given := bearer(request):
        if hmac.compare_digest(given.encode(), settings.token.encode()):
            return
    elif request.method == "GET" and signing.verify(
        settings.token, request.scope["path"], request.query_params.get("exp", ""), request.query_params.get("sig", "")
    ):
        return
    raise Unauthenticated()


def bearer(request: Request) -> str:
    """The token of an `Authorization: Bearer <token>` header ("" without one)."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def get_orchestrator(request: Request, settings: SettingsDep) -> Orchestrator:
    """The stub, with the token to pass on (the gateway's own when it has one, else the caller's)
    and the caller's address, the key of the per-client limits here (limits.py) and, with the
    gateway token, on the orchestrator."""
    token = settings.token or bearer(request)
    metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else ()
    client = request.client.host if request.client else ""
    return Orchestrator(request.app.state.stub, metadata + forwarding_metadata(settings.gateway_token, client))


OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]


def api_router() -> APIRouter:
    """A router for routes under /api/video: each of them requires the token."""
    return APIRouter(prefix="/api/video", dependencies=[Depends(require_token)])


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("contains a NUL character")
    return value


# A path or query parameter that goes into a proto string (job ids, page tokens, file names).
Text = Annotated[str, AfterValidator(_no_nul)]
# page_size, an int32 on the wire.
PageSize = Annotated[int, Query(ge=0, le=2**31 - 1)]
