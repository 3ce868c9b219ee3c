"""`videoedit-web`: serve the HTTP API and the web page (uvicorn).

Environment: VIDEOEDIT_SERVER (the orchestrator, localhost:50051), VIDEOEDIT_HTTP_PORT (8000),
VIDEOEDIT_AUTH_TOKEN, VIDEOEDIT_TLS_CA, VIDEOEDIT_MAX_UPLOAD_MB (2048),
VIDEOEDIT_HTTP_ALLOWED_ORIGINS (comma-separated; default the gateway's own: http://localhost:PORT,
http://127.0.0.1:PORT, http://[::1]:PORT and the bound host), VIDEOEDIT_HTTP_LINK_TTL_S (300),
VIDEOEDIT_HTTP_MAX_BODY_KB (1024), VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT (32),
VIDEOEDIT_HTTP_MAX_STREAMS (5000), VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT (4),
VIDEOEDIT_UPLOAD_IDLE_S (30), VIDEOEDIT_GATEWAY_TOKEN (the secret shared with the orchestrator,
so that its per-client limits count each HTTP client; unset: the gateway is one client to it);
FORWARDED_ALLOW_IPS (uvicorn's: the proxies whose X-Forwarded-For
is trusted; unset: none).
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from .app import GatewaySettings, create_app
from .guards import allowed_origins
from .limits import ClientLimits


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="videoedit-web", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=env.get("VIDEOEDIT_HTTP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("VIDEOEDIT_HTTP_PORT", 8000)))
    parser.add_argument(
        "--server", default=env.get("VIDEOEDIT_SERVER", "localhost:50051"), help="the orchestrator's gRPC address"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = GatewaySettings(
        orchestrator=args.server,
        token=env.get("VIDEOEDIT_AUTH_TOKEN", ""),
        tls_ca=env.get("VIDEOEDIT_TLS_CA", ""),
        max_upload_bytes=int(float(env.get("VIDEOEDIT_MAX_UPLOAD_MB", 2048)) * 2**20),
        max_body_bytes=int(float(env.get("VIDEOEDIT_HTTP_MAX_BODY_KB", 1024)) * 2**10),
        allowed_origins=allowed_origins(env.get("VIDEOEDIT_HTTP_ALLOWED_ORIGINS", ""), args.host, args.port),
        link_ttl_s=float(env.get("VIDEOEDIT_HTTP_LINK_TTL_S", 300)),
        gateway_token=env.get("VIDEOEDIT_GATEWAY_TOKEN", ""),
        limits=ClientLimits(
            streams_per_client=int(env.get("VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT", 32)),
            streams_total=int(env.get("VIDEOEDIT_HTTP_MAX_STREAMS", 5000)),
            uploads_per_client=int(env.get("VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT", 4)),
            upload_idle_s=float(env.get("VIDEOEDIT_UPLOAD_IDLE_S", 30)),
        ),
    )
    log = logging.getLogger("videoedit.web")
    if not settings.gateway_token:
        log.warning(
            "VIDEOEDIT_GATEWAY_TOKEN is not set: the orchestrator counts this gateway as ONE client, so "
            "its per-client limits (VIDEOEDIT_MAX_UPLOADS_PER_CLIENT, VIDEOEDIT_MAX_STREAMS_PER_CLIENT) "
            "are shared by all HTTP clients; set the same secret on both"
        )
    log.info(
        "HTTP on %s:%d -> orchestrator %s%s; origins %s",
        args.host,
        args.port,
        args.server,
        " (token required)" if settings.token else "",
        ", ".join(settings.allowed_origins),
    )
    # X-Forwarded-For names the client (the per-client limits' key) only when FORWARDED_ALLOW_IPS
    # names the proxies to trust; else any local process could pass for any client.
    proxied = bool(env.get("FORWARDED_ALLOW_IPS"))
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info", proxy_headers=proxied)
