"""Short-lived signed URLs, for the two things a browser cannot send an Authorization header with
(EventSource and <video>): `path?exp=<unix seconds>&sig=<HMAC-SHA256 hex>`.

The key is derived from the auth token, so every gateway replica with the same token verifies the
links any of them handed out, and changing the token revokes them all. The signature covers the
path and the expiry only (not the method or other parameters): a link works for its own path,
until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"videoedit-http-link-v1", hashlib.sha256).digest()


def _signature(token: str, path: str, expires: int) -> str:
    return hmac.new(_key(token), f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(token: str, path: str, ttl_s: float, now: float | None = None) -> tuple[str, int]:
    """The query string that makes `path` (as the server sees it, unquoted) usable without the
    token for `ttl_s` seconds, and its expiry."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return urlencode({"exp": expires, "sig": _signature(token, path, expires)}), expires


def verify(token: str, path: str, expires: str, signature: str, now: float | None = None) -> bool:
    """Whether `signature` was made by `signed_query` for `path` and `expires` has not passed."""
    if not (expires.isascii() and expires.isdigit()) or int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _signature(token, path, int(expires)).encode())
