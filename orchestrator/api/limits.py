"""How much the orchestrator's clients may hold open at once, so that no client starves the rest.

A client is the host of the peer (its port dropped: every connection of one machine counts
together), or, for a call from an HTTP gateway holding the shared VIDEOEDIT_GATEWAY_TOKEN, the HTTP
client the gateway names (videoedit/v1/gateway.py): else the gateway would be one client for all
its callers, and one caller's stalled uploads would use up every other caller's share. Past a
limit a stream is refused RESOURCE_EXHAUSTED naming the limit and its variable.
Counted on the server's event loop only: no locks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum

from videoedit.v1.gateway import forwarded_client

from ..config import Settings
from ..errors import ResourceExhausted


class Stream(Enum):
    WATCH = "WatchStatus"
    UPLOAD = "UploadVideo"
    DOWNLOAD = "DownloadArtifact"


def client_of(peer: str) -> str:
    """The client of a gRPC peer string: 'ipv4:10.0.0.5:4242' -> '10.0.0.5', 'ipv6:[::1]:4242' ->
    '::1'; other kinds (unix:...) as they are."""
    found = re.fullmatch(r"ipv4:([^:]+):\d+|ipv6:\[([^\]]+)\]:\d+", peer)
    return peer if found is None else found.group(1) or found.group(2)


class StreamLimits:
    """The open streams per client and kind, and the watchers in total, against the settings'
    limits (VIDEOEDIT_MAX_STREAMS_PER_CLIENT, VIDEOEDIT_MAX_UPLOADS_PER_CLIENT, VIDEOEDIT_MAX_WATCHERS)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._streams: Counter[str] = Counter()  # per client, every kind
        self._uploads: Counter[str] = Counter()  # per client
        self.watchers = 0

    @contextmanager
    def hold(self, peer: str, kind: Stream, metadata: Iterable[tuple[str, str | bytes]] = ()) -> Iterator[None]:
        """Count a stream of `kind` from `peer` (or the end client a trusted gateway names in the
        call's `metadata`) while the block runs; ResourceExhausted past a limit."""
        client = forwarded_client(metadata, self.settings.gateway_token) or client_of(peer)
        s = self.settings
        if self._streams[client] >= s.max_streams_per_client:
            raise ResourceExhausted(
                f"{client} has {self._streams[client]} streams open, the limit per client "
                f"(VIDEOEDIT_MAX_STREAMS_PER_CLIENT={s.max_streams_per_client}): close some before opening more"
            )
        if kind is Stream.UPLOAD and self._uploads[client] >= s.max_uploads_per_client:
            raise ResourceExhausted(
                f"{client} has {self._uploads[client]} uploads under way, the limit per client "
                f"(VIDEOEDIT_MAX_UPLOADS_PER_CLIENT={s.max_uploads_per_client}): upload one after another"
            )
        if kind is Stream.WATCH and self.watchers >= s.max_watchers:
            raise ResourceExhausted(
                f"{self.watchers} WatchStatus streams are open, the server's limit "
                f"(VIDEOEDIT_MAX_WATCHERS={s.max_watchers}): poll GetStatus or retry later"
            )
        self._count(client, kind, +1)
        try:
            yield
        finally:
            self._count(client, kind, -1)

    def _count(self, client: str, kind: Stream, step: int) -> None:
        self._streams[client] += step
        if kind is Stream.UPLOAD:
            self._uploads[client] += step
        if kind is Stream.WATCH:
            self.watchers += step
        if not self._streams[client]:  # forget clients gone (a Counter keeps zeros)
            del self._streams[client]
            self._uploads.pop(client, None)
