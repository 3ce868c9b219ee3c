"""What the routes are handed, as FastAPI dependencies: the settings, the caller's credential (an
API key or the token, or a signed link), the orchestrator (its gRPC stub, calling with that
credential), and the types of path and query parameters (checked before a route runs: 400 naming
the parameter).

`create_app` keeps the settings and the stub on `app.state`; routes get them only through here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator

from videoedit.v1 import auth
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc
from videoedit.v1.auth import api_key_id, bearer_metadata
from videoedit.v1.gateway import ADMIN_TOKEN_ID, forwarding_metadata, on_behalf_metadata

from . import signing
from .limits import ClientLimits

CALL_TIMEOUT_S = 30.0  # each unary call; streams (events, uploads, downloads) last as long as they need

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway reaches the orchestrator and what it asks of HTTP clients (cli.py reads them
    from the environment)."""

    orchestrator: str = "localhost:50051"  # VIDEOEDIT_SERVER
    # VIDEOEDIT_AUTH_TOKEN: the one admin key of one-user setups; with it set, a caller needs it or
    # an API key (judged by the orchestrator). Without it, every bearer is passed on.
    token: str = ""
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

    @property
    def link_secret(self) -> str:
        """What signed links are signed with (signing.py): the secret shared with the orchestrator
        (needed for links of API keys), else the auth token ("": links are plain URLs)."""
        return self.gateway_token or self.token


class Unauthenticated(Exception):
    """An /api call without a key or with a wrong one (-> 401)."""

    def __init__(self) -> None:
        super().__init__(
            "missing or wrong key: send 'Authorization: Bearer <API key or VIDEOEDIT_AUTH_TOKEN>', "
            "or use a link from POST /api/video/links/{job_id} (expired links need a new one)"
        )


@dataclass(frozen=True)
class Credential:
    """What one HTTP request calls the orchestrator with, and whom a link it asks for acts for.
    `key_id`: an API key's id, ADMIN_TOKEN_ID for the VIDEOEDIT_AUTH_TOKEN holder, None without
    either (no auth: links are plain URLs)."""

    metadata: Metadata
    key_id: str | None


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


async def get_credential(request: Request, settings: SettingsDep) -> Credential:
    """The caller's credential: `Authorization: Bearer <key>` (the scheme in any case), or for a
    GET a link signed for this path that has not expired (signing.py). With VIDEOEDIT_AUTH_TOKEN
    set here, the token itself or an API key; without it, any bearer goes on to the orchestrator,
    which judges it. API keys are always judged there (the job store holds them), on every call."""
    if given := bearer(request):
        if settings.token and hmac.compare_digest(given.encode(), settings.token.encode()):
            return Credential(bearer_metadata(given), ADMIN_TOKEN_ID)
        if key_id := api_key_id(given):
            return Credential(bearer_metadata(given), key_id)
        if not settings.token:
            return Credential(bearer_metadata(given), None)
    elif request.method == "GET" and (link := _signed_link(request, settings)) is not None:
        return link
    elif not settings.token:
        return Credential((), None)  # no auth here: the orchestrator refuses if it wants a key
    raise Unauthenticated()


def _signed_link(request: Request, settings: SettingsDep) -> Credential | None:
    """The credential of a valid signed link's key (None: no valid link)."""
    query = request.query_params
    key_id = query.get("k", "")
    if not (secret := settings.link_secret) or not signing.verify(
        secret, request.scope["path"], query.get("exp", ""), key_id, query.get("sig", "")
    ):
        return None
    if key_id == ADMIN_TOKEN_ID and settings.token:
        return Credential(bearer_metadata(settings.token), key_id)
    return Credential(on_behalf_metadata(settings.gateway_token, key_id), key_id)


def bearer(request: Request) -> str:
    """The credential of an `Authorization: Bearer <credential>` header ("" without one)."""
    return auth.bearer(request.headers.get("authorization", ""))


CredentialDep = Annotated[Credential, Depends(get_credential)]


async def get_orchestrator(request: Request, credential: CredentialDep, settings: SettingsDep) -> Orchestrator:
    """The stub, with the caller's credential and the caller's address, the key of the per-client
    limits here (limits.py) and, with the gateway token, on the orchestrator."""
    client = request.client.host if request.client else ""
    return Orchestrator(
        request.app.state.stub, credential.metadata + forwarding_metadata(settings.gateway_token, client)
    )


OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]


def api_router() -> APIRouter:
    """A router for routes under /api/video: each of them requires the token."""
    return APIRouter(prefix="/api/video", dependencies=[Depends(get_credential)])


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("contains a NUL character")
    return value


# A path or query parameter that goes into a proto string (job ids, page tokens, file names).
Text = Annotated[str, AfterValidator(_no_nul)]
# page_size, an int32 on the wire.
PageSize = Annotated[int, Query(ge=0, le=2**31 - 1)]
