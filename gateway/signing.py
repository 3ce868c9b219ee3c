"""Short-lived signed URLs, for the two things a browser cannot send an Authorization header with
(EventSource and <video>): `path?exp=<unix seconds>&k=<key id>&sig=<HMAC-SHA256 hex>`.

A link acts for the key that asked for it (`k`: an API key's public id, or ADMIN_TOKEN_ID for the
VIDEOEDIT_AUTH_TOKEN holder): the gateway calls the orchestrator on that key's behalf, and the
orchestrator still checks the key, so a link of a revoked key stops working at once and a link
shows only its key's tenant's jobs. The signing key is derived from a secret every gateway replica
shares (VIDEOEDIT_GATEWAY_TOKEN, else VIDEOEDIT_AUTH_TOKEN), so any replica verifies the links any
of them handed out, and changing the secret revokes them all. The signature covers the path, the
expiry and the key id (not the method or other parameters): a link works for its own path, until
it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"videoedit-http-link-v2", hashlib.sha256).digest()


def _signature(secret: str, path: str, expires: int, key_id: str) -> str:
    return hmac.new(_key(secret), f"{path}\n{expires}\n{key_id}".encode(), hashlib.sha256).hexdigest()


def signed_query(secret: str, path: str, key_id: str, ttl_s: float, now: float | None = None) -> tuple[str, int]:
    """The query string that makes `path` (as the server sees it, unquoted) usable without a
    header for `ttl_s` seconds, acting for `key_id`, and its expiry."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return urlencode({"exp": expires, "k": key_id, "sig": _signature(secret, path, expires, key_id)}), expires


def verify(secret: str, path: str, expires: str, key_id: str, signature: str, now: float | None = None) -> bool:
    """Whether `signature` was made by `signed_query` for `path`, `expires` and `key_id`, and
    `expires` has not passed."""
    if not (expires.isascii() and expires.isdigit()) or int(expires) < (time.time() if now is None else now):
        return False
    if not key_id:
        return False
    return hmac.compare_digest(signature.encode(), _signature(secret, path, int(expires), key_id).encode())
