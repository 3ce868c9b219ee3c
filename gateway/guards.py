"""Two ASGI middlewares every request passes:

`CheckOrigin`: the Host header must name one of the allowed origins (VIDEOEDIT_HTTP_ALLOWED_ORIGINS;
by default the gateway's own: localhost, 127.0.0.1, [::1] or the address it is bound to, on its
port), and an Origin header, when a browser sends one, must be one of them too; else 403, token
or not. A page on another site cannot then drive the API through the user's browser, and a DNS
name rebound to 127.0.0.1 does not reach it either. /healthz is exempt (probes use the pod's IP).

`SecurityHeaders`: nosniff on every answer; the page and its static files with a
Content-Security-Policy that allows only this origin's own scripts and no framing; API answers
(artifacts included) with a policy that allows nothing, sandboxed, so a file served from here
cannot run as a page of this origin even if a browser opens it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}
UNCHECKED = ("/healthz",)

PAGE_POLICY = (
    # img-src data:: Swagger UI's style sheet draws its icons as data: URLs; media-src blob:: the
    # page reads a picked clip's duration from a blob: URL of it (the slow-job warning)
    "default-src 'self'; script-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


def allowed_origins(configured: str, host: str, port: int) -> tuple[str, ...]:
    """The origins VIDEOEDIT_HTTP_ALLOWED_ORIGINS names (comma-separated, e.g.
    "https://video.example.com"), or by default the gateway's own, as `http://host:port`."""
    if configured.strip():
        return tuple(_origin(given.strip()) for given in configured.split(",") if given.strip())
    hosts = list(LOOPBACK)
    bound = f"[{host}]" if ":" in host else host.lower()
    if host not in ("", "0.0.0.0", "::") and bound not in hosts:
        hosts.append(bound)
    return tuple(f"http://{name}:{port}" for name in hosts)


def _origin(given: str) -> str:
    """`given` as a browser writes an Origin (lowercase, default port left out); ValueError when
    it is not scheme://host[:port]."""
    parts = urlsplit(given.lower())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ValueError(f"VIDEOEDIT_HTTP_ALLOWED_ORIGINS: {given!r} is not an origin like http://host:port")
    netloc = parts.netloc
    if parts.port == DEFAULT_PORTS[parts.scheme]:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


class CheckOrigin:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]):
        self.app = app
        self.origins = {_origin(o) for o in origins}
        self.hosts = {host for origin in self.origins for host in _hosts(origin)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNCHECKED:
            try:
                self.check(Headers(scope=scope))
            except ApiError as refused:
                return await refused.response()(scope, receive, send)
        await self.app(scope, receive, send)

    def check(self, headers: Headers) -> None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            raise ApiError(403, f"Host: {host!r} is not one of this gateway's origins ({self._setting()})")
        origin = headers.get("origin")
        if origin is not None and _normal(origin) not in self.origins:
            raise ApiError(403, f"Origin: {origin!r} is not one of this gateway's origins ({self._setting()})")

    def _setting(self) -> str:
        return f"{', '.join(sorted(self.origins))}; VIDEOEDIT_HTTP_ALLOWED_ORIGINS"


def _hosts(origin: str) -> set[str]:
    """The Host headers that reach `origin`: its host and port, the default port written or not."""
    scheme, netloc = origin.split("://")
    if urlsplit(origin).port is None:
        return {netloc, f"{netloc}:{DEFAULT_PORTS[scheme]}"}
    return {netloc}


def _normal(origin: str) -> str:
    try:
        return _origin(origin)
    except ValueError:  # "null" (a sandboxed frame, a file:// page) or nonsense
        return origin


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        policy = API_POLICY if path.startswith("/api/") else PAGE_POLICY if _is_page(path) else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                if policy:
                    headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_page(path: str) -> bool:
    return path in ("/", "/docs", "/favicon.ico") or path.startswith(("/static/", "/vendor/", "/jobs/"))
