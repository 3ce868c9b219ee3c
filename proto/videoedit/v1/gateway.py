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
ON_BEHALF_KEY = "videoedit-on-behalf-of"
ADMIN_TOKEN_ID = "auth-token"  # on_behalf_metadata's key id for the holder of VIDEOEDIT_AUTH_TOKEN
# UploadVideo's initial metadata once the upload was taken (past the per-client limits): a sender
# that sees the call end without it learns the refusal's real status before any write can fail.
UPLOAD_ACCEPTED = "videoedit-upload-accepted"


def on_behalf_metadata(token: str, key_id: str) -> tuple[tuple[str, str], ...]:
    """The metadata a gateway holding `token` sends to call as the holder of the API key `key_id`
    (a signed link: the browser cannot send the key, the gateway signed the link for that key and
    checked the signature). The orchestrator still checks that the key is valid, so a link of a
    revoked key stops working at once. ADMIN_TOKEN_ID: the holder of VIDEOEDIT_AUTH_TOKEN."""
    return ((GATEWAY_TOKEN_KEY, token), (ON_BEHALF_KEY, key_id)) if token and key_id else ()


def on_behalf_of(metadata: Iterable[tuple[str, str | bytes]], token: str | None) -> str | None:
    """The API key id a call is made on behalf of, when it carries `token`; else None."""
    values = _values(metadata)
    given, key_id = values.get(GATEWAY_TOKEN_KEY, ""), values.get(ON_BEHALF_KEY, "")
    if not (token and given and key_id):
        return None
    return key_id if hmac.compare_digest(given.encode(), token.encode()) else None


def _values(metadata: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else value.decode(errors="replace") for key, value in metadata}


def forwarding_metadata(token: str, client: str) -> tuple[tuple[str, str], ...]:
    """The metadata a gateway holding `token` sends to name `client` (none without a token)."""
    return ((GATEWAY_TOKEN_KEY, token), (CLIENT_KEY, client)) if token and client else ()


def forwarded_client(metadata: Iterable[tuple[str, str | bytes]], token: str | None) -> str | None:
    """The end client a call names, when it carries `token` (compared in constant time); else None."""
    values = _values(metadata)
    given, client = values.get(GATEWAY_TOKEN_KEY, ""), values.get(CLIENT_KEY, "")
    if not (token and given and client):
        return None
    return client if hmac.compare_digest(given.encode(), token.encode()) else None
