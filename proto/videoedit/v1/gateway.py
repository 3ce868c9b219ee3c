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
    return _vouched(token, ON_BEHALF_KEY, key_id)


def on_behalf_of(metadata: Iterable[tuple[str, str | bytes]], token: str | None) -> str | None:
    """The API key id a call is made on behalf of, when it carries `token`; else None."""
    return _vouched_for(metadata, token, ON_BEHALF_KEY)


def forwarding_metadata(token: str, client: str) -> tuple[tuple[str, str], ...]:
    """The metadata a gateway holding `token` sends to name `client` (none without a token)."""
    return _vouched(token, CLIENT_KEY, client)


def forwarded_client(metadata: Iterable[tuple[str, str | bytes]], token: str | None) -> str | None:
    """The end client a call names, when it carries `token`; else None."""
    return _vouched_for(metadata, token, CLIENT_KEY)


def _vouched(token: str, key: str, value: str) -> tuple[tuple[str, str], ...]:
    """`value` under `key`, with the gateway's `token` that vouches for it (none without both)."""
    return ((GATEWAY_TOKEN_KEY, token), (key, value)) if token and value else ()


def _vouched_for(metadata: Iterable[tuple[str, str | bytes]], token: str | None, key: str) -> str | None:
    """The value under `key`, when the call also carries `token` (compared in constant time)."""
    values = {k: v if isinstance(v, str) else v.decode(errors="replace") for k, v in metadata}
    given, value = values.get(GATEWAY_TOKEN_KEY, ""), values.get(key, "")
    if not (token and given and value):
        return None
    return value if hmac.compare_digest(given.encode(), token.encode()) else None
