"""What the HTTP gateway and the orchestrator agree on beyond the .proto: the call metadata by which
a trusted gateway names the HTTP client it calls for, and the header by which UploadVideo says it
took an upload.

The orchestrator's per-client limits count a client by its address, and a gateway in front is one
address for all its HTTP callers: with the limits the orchestrator grants one client, a few stalled
uploads through the gateway would block every other HTTP client's. So a gateway that holds the
shared secret VIDEOEDIT_GATEWAY_TOKEN passes it with the end client's address on every call, and
the orchestrator (holding the same secret) counts that client instead. Without the secret, or with
a wrong one, the forwarded address is ignored: any caller could name any client otherwise.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

GATEWAY_TOKEN_KEY = "videoedit-gateway-token"
CLIENT_KEY = "videoedit-client"
# UploadVideo's initial metadata once the upload was taken (past the per-client limits): a sender
# that sees the call end without it learns the refusal's real status before any write can fail.
UPLOAD_ACCEPTED = "videoedit-upload-accepted"


def forwarding_metadata(token: str, client: str) -> tuple[tuple[str, str], ...]:
    """The metadata a gateway holding `token` sends to name `client` (none without a token)."""
    return ((GATEWAY_TOKEN_KEY, token), (CLIENT_KEY, client)) if token and client else ()


def forwarded_client(metadata: Iterable[tuple[str, str | bytes]], token: str | None) -> str | None:
    """The end client a call names, when it carries `token` (compared in constant time); else None."""
    values = {key: value if isinstance(value, str) else value.decode(errors="replace") for key, value in metadata}
    given, client = values.get(GATEWAY_TOKEN_KEY, ""), values.get(CLIENT_KEY, "")
    if not (token and given and client):
        return None
    return client if hmac.compare_digest(given.encode(), token.encode()) else None
