"""What the routes are handed, as FastAPI dependencies: the settings, the token check and the
orchestrator (its gRPC stub, calling with the caller's token).

`create_app` keeps the settings and the stub on `app.state`; routes get them only through here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

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


class Unauthenticated(Exception):
    """An /api call without the gateway's token (-> 401)."""

    def __init__(self) -> None:
        super().__init__(
            "missing or wrong token: send 'Authorization: Bearer <VIDEOEDIT_AUTH_TOKEN>' or ?access_token="
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

    def stream(self, rpc: str, request: Any) -> Any:
        """A streaming call (no deadline); `request` is a message or, for client streams, an iterator."""
        return getattr(self.stub, rpc)(request, metadata=self.metadata)


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


async def require_token(request: Request, settings: SettingsDep) -> None:
    """With a token set, the caller must send it: `Authorization: Bearer <token>`, or, only when
    there is no Authorization header, `?access_token=<token>` (for <video> and EventSource)."""
    if not settings.token:
        return
    given = request.headers.get("authorization", "") or f"Bearer {request.query_params.get('access_token', '')}"
    if not hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
        raise Unauthenticated()


async def get_orchestrator(request: Request, settings: SettingsDep) -> Orchestrator:
    """The stub, with the token to pass on: the gateway's own when it has one, else the caller's."""
    if settings.token:
        metadata: Metadata = (("authorization", f"Bearer {settings.token}"),)
    else:
        given = request.headers.get("authorization")
        metadata = (("authorization", given),) if given else ()
    return Orchestrator(request.app.state.stub, metadata)


OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]


def api_router() -> APIRouter:
    """A router for routes under /api/video: each of them requires the token."""
    return APIRouter(prefix="/api/video", dependencies=[Depends(require_token)])
