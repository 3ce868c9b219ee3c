"""A real TCP proxy on loopback that can cut the network without closing anything, for tests of
what a client does when its server stops answering (a network partition).

    with Proxy(target) as proxy:    # target: ("host", port), or the path of a Unix socket
        connect to proxy.address    # "127.0.0.1:<port>", a free port
        proxy.partition()           # from now on nothing gets through, either way
        proxy.heal()                # everything gets through again, nothing lost

During a partition the proxy reads nothing and writes nothing, and keeps every socket open:
the kernel still acknowledges what a client sends (until its receive buffer is full), so the
client's TCP keepalives and tcp_user_timeout see a healthy connection, as behind a user-space
proxy or load balancer whose far side is gone. New connections are accepted, but reach the target
only when the partition heals. heal() resumes every connection with the bytes that waited, as TCP
does after a real partition (a request sent meanwhile arrives late); a side that closed meanwhile
is closed on the other side then.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
from dataclasses import dataclass, field

BUFFER_BYTES = 1 << 20  # per direction of a connection: reading stops while this much waits to be written
CONNECT_TIMEOUT_S = 5.0


@dataclass(eq=False)
class _End:
    """One side of a proxied connection: its socket, and the bytes waiting to be written to it."""

    sock: socket.socket | None  # the target's side: None until connected (after a partition heals)
    outbox: bytearray = field(default_factory=bytearray)
    reading: bool = True  # False once this side closed its sending half (EOF)
    shut: bool = False  # its peer's EOF was passed on (our sending half towards it is closed)


@dataclass(eq=False)
class _Link:
    client: _End
    target: _End

    def ends(self) -> tuple[tuple[_End, _End], tuple[_End, _End]]:
        """(end, its peer), for both ends."""
        return (self.client, self.target), (self.target, self.client)


class Proxy:
    """Forwards every connection made to `address` to `target` (a (host, port) pair or a Unix
    socket's path) until partition(), again after heal(); close() (or leaving the `with`)
    closes every connection. partition() and heal() take effect before they return: after
    partition(), not one more byte gets through."""

    host = "127.0.0.1"

    def __init__(self, target: tuple[str, int] | str | os.PathLike[str]):
        self.target = target
        self._listener = socket.create_server((self.host, 0))  # bound now: nobody else takes the port
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._state = threading.Condition()
        self._forwarding, self._closing = True, False
        self._asked = self._applied = 0  # changes of state asked for, and taken into account by the loop
        self._links: list[_Link] = []  # the loop's own
        self._selector = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._loop, name=f"proxy:{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port to connect to instead of the target."""
        return f"{self.host}:{self.port}"

    def partition(self) -> None:
        """Stop forwarding, in both directions, silently (no socket is closed)."""
        self._change(forwarding=False)

    def heal(self) -> None:
        """Forward again: what waited goes through, and connections accepted meanwhile reach the target."""
        self._change(forwarding=True)

    def close(self) -> None:
        """Close every connection (both sides) and stop listening."""
        if self._thread.is_alive():
            self._change(closing=True)
            self._thread.join()
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _change(self, forwarding: bool | None = None, closing: bool = False) -> None:
        with self._state:
            self._forwarding = self._forwarding if forwarding is None else forwarding
            self._closing = self._closing or closing
            self._asked += 1
            asked = self._asked
            self._wake_writer.send(b"x")
            self._state.wait_for(lambda: self._applied >= asked or not self._thread.is_alive())

    # --- the loop thread ---

    def _loop(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        try:
            while True:
                with self._state:
                    forwarding, closing, asked = self._forwarding, self._closing, self._asked
                if closing:
                    return
                if forwarding:
                    self._connect_waiting()
                self._watch(forwarding)
                with self._state:  # whatever this loop forwards from now on, it forwards in the new state
                    self._applied = asked
                    self._state.notify_all()
                for key, mask in self._selector.select():
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_reader:
                        self._wake_reader.recv(4096)
                    else:
                        self._pass(key.data, key.fileobj, mask)
                self._pass_on_closes()
        finally:
            for link in self._links[:]:
                self._drop(link)
            self._selector.close()
            with self._state:  # nothing is forwarded any more, whatever was asked
                self._applied = self._asked
                self._state.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except BlockingIOError:
                return
            client.setblocking(False)
            self._links.append(_Link(_End(client), _End(None)))

    def _connect_waiting(self) -> None:
        """Connect to the target the clients accepted since the last partition."""
        for link in self._links[:]:
            if link.target.sock is not None:
                continue
            try:
                if isinstance(self.target, tuple):
                    sock = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
                else:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(CONNECT_TIMEOUT_S)
                    sock.connect(os.fspath(self.target))
            except OSError:  # the target is down: the client sees its connection closed
                self._drop(link)
                continue
            sock.setblocking(False)
            link.target.sock = sock

    def _watch(self, forwarding: bool) -> None:
        """Select the sockets there is something to do on: none in a partition."""
        for link in self._links:
            for end, peer in link.ends():
                if end.sock is None:
                    continue
                mask = 0
                if forwarding and end.reading and peer.sock is not None and len(peer.outbox) < BUFFER_BYTES:
                    mask |= selectors.EVENT_READ
                if forwarding and end.outbox:
                    mask |= selectors.EVENT_WRITE
                try:
                    key = self._selector.get_key(end.sock)
                except KeyError:
                    key = None
                if key is None and mask:
                    self._selector.register(end.sock, mask, link)
                elif key is not None and not mask:
                    self._selector.unregister(end.sock)
                elif key is not None and key.events != mask:
                    self._selector.modify(end.sock, mask, link)

    def _pass(self, link: _Link, sock: socket.socket, mask: int) -> None:
        """Move the bytes one socket is ready for."""
        if link not in self._links:
            return  # dropped earlier in this round
        end, peer = link.ends()[0] if sock is link.client.sock else link.ends()[1]
        try:
            if mask & selectors.EVENT_WRITE and end.outbox:
                sent = sock.send(end.outbox)
                del end.outbox[:sent]
            if mask & selectors.EVENT_READ:
                data = sock.recv(65536)
                if data:
                    peer.outbox += data
                else:
                    end.reading = False
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # reset: the other side sees its connection closed too
            self._drop(link)

    def _pass_on_closes(self) -> None:
        """A side that closed: once what it sent is through, close the peer's sending half; both
        closed and flushed, the connection ends."""
        for link in self._links[:]:
            for end, peer in link.ends():
                if not end.reading and not peer.outbox and not peer.shut and peer.sock is not None:
                    try:
                        peer.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    peer.shut = True
            if link.client.shut and link.target.shut:
                self._drop(link)

    def _drop(self, link: _Link) -> None:
        self._links.remove(link)
        for end in (link.client, link.target):
            if end.sock is not None:
                if end.sock in self._selector.get_map():
                    self._selector.unregister(end.sock)
                end.sock.close()
