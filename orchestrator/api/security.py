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

from videoedit.v1.auth import TokenCheck, refusal


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """videoedit.v1.auth's token check on grpc.aio: a call its TokenCheck does not admit is answered
    UNAUTHENTICATED by a handler of the same shape, before it reaches the servicer."""

    def __init__(self, token: str, variable: str):
        self._check = TokenCheck(token, variable)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or self._check.admits(handler_call_details):
            return handler

        async def deny(_request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, self._check.refusal)

        return refusal(handler, deny)


def server_credentials(cert_file: Path, key_file: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_file.read_bytes(), cert_file.read_bytes())])
