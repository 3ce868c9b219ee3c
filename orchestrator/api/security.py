"""Who may call the service: an optional bearer token and optional TLS.

With VIDEOEDIT_AUTH_TOKEN set, every VideoEditService (and reflection) call must carry
`authorization: Bearer <token>` or gets UNAUTHENTICATED (videoedit.v1.auth, the check the model
server shares); the health service stays open so load balancers and orchestration can probe it.
TLS (certificate and key files) protects the token and the media on the wire; without it, keep
the port on a private network.
"""

from __future__ import annotations

from pathlib import Path

import grpc


def server_credentials(cert_file: Path, key_file: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_file.read_bytes(), cert_file.read_bytes())])
