"""Per-client limits, so that one client cannot hold all of the gateway (and through it the
orchestrator): concurrent event streams and downloads per client and in all, concurrent uploads
per client, and how long an upload body may stall.

`ClientLimits` is the configuration (cli.py reads it); `LimitConcurrency` counts what each client
(its address, request.client.host) has open and answers 429 with Retry-After past a limit. It is
an ASGI middleware around the whole request, so a slot is held until the response's last byte
went out or the client went away, however the stream ended.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError

RETRY_AFTER_S = 5


@dataclass(frozen=True)
class ClientLimits:
    streams_per_client: int = 32  # VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT: event streams + downloads
    streams_total: int = 5000  # VIDEOEDIT_HTTP_MAX_STREAMS
    uploads_per_client: int = 4  # VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT
    upload_idle_s: float = 30.0  # VIDEOEDIT_UPLOAD_IDLE_S: an upload sending nothing this long is 408


# Which requests hold a slot of which pool: (method, path pattern) -> pool.
POOLS = (
    ("GET", re.compile(r"/api/video/(events|artifact)/"), "streams"),
    ("POST", re.compile(r"/api/video/upload$"), "uploads"),
)


@dataclass
class Pool:
    """What is open in one pool: per client, and in all."""

    per_client: int
    total: int | None  # None: no limit in all
    settings: tuple[str, str]  # the settings to name in a refusal: (in all, per client)
    open: Counter[str]

    def take(self, client: str) -> None:
        if self.total is not None and self.open.total() >= self.total:
            raise ApiError(
                429, f"the gateway has {self.total} streams open ({self.settings[0]}); retry later", _retry()
            )
        if self.open[client] >= self.per_client:
            raise ApiError(
                429, f"{client} has {self.per_client} open already ({self.settings[1]}); retry later", _retry()
            )
        self.open[client] += 1

    def give_back(self, client: str) -> None:
        self.open[client] -= 1
        if not self.open[client]:
            del self.open[client]


def _retry() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_S)}


class LimitConcurrency:
    """The ASGI middleware holding a pool's slot for each stream, download or upload request."""

    def __init__(self, app: ASGIApp, limits: ClientLimits):
        self.app = app
        self.pools = {
            "streams": Pool(
                limits.streams_per_client,
                limits.streams_total,
                ("VIDEOEDIT_HTTP_MAX_STREAMS", "VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT"),
                Counter(),
            ),
            "uploads": Pool(limits.uploads_per_client, None, ("", "VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT"), Counter()),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self._pool(scope)
        if pool is None:
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else "unknown"
        try:
            pool.take(client)
        except ApiError as refused:
            return await refused.response()(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:
            pool.give_back(client)

    def _pool(self, scope: Scope) -> Pool | None:
        if scope["type"] != "http":
            return None
        for method, path, name in POOLS:
            if scope["method"] == method and path.match(scope["path"]):
                return self.pools[name]
        return None
