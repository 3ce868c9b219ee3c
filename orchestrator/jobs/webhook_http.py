"""One callback POST, to the address that was checked (callback_urls.resolve), not to whatever
the name resolves to by the time the connection is made (DNS rebinding). The request still names
the host in its Host header and, over https, in TLS SNI, and the certificate is checked against
the hostname. Redirects are not followed (http.client never does): a 3xx is an answer like a 4xx.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from .callback_urls import CallbackTarget, IPAddress

# Most of a response body read (and thrown away) before the connection closes.
MAX_RESPONSE_BYTES = 64 << 10


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `address`, with `host` in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`: Host header, SNI and the certificate's check all for `host`."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext | None = None):
        self.tls = tls or ssl.create_default_context()  # certificate and hostname checked
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class Deadline:
    """Ends a request still going `seconds` after it began: the socket timeout bounds each read,
    not the whole, and a receiver answering a byte at a time would hold a sender thread for
    days. Shutting the socket down wakes the blocked read (it then fails like a reset)."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float):
        self.conn = conn
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def expire(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed meanwhile
                pass


@dataclass(frozen=True)
class Answer:
    """What the receiver answered."""

    status: int
    retry_after_s: float | None = None  # its Retry-After, in seconds from now


def post(target: CallbackTarget, address: IPAddress, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
    """POST `body` to `target` at `address`; OSError or http.client.HTTPException when no answer
    came (refused, reset, timed out: `timeout_s` for the whole request, Deadline)."""
    if target.scheme == "https":
        conn: http.client.HTTPConnection = PinnedHTTPSConnection(target.host, target.port, str(address), timeout_s)
    else:
        conn = PinnedHTTPConnection(target.host, target.port, str(address), timeout_s)
    deadline = Deadline(conn, timeout_s)
    deadline.timer.start()
    try:
        conn.request("POST", target.target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return Answer(response.status, retry_after(response.getheader("Retry-After")))
    finally:
        deadline.timer.cancel()
        conn.close()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) in seconds from now; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
