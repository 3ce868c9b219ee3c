"""Where a job's callback (extra.callback_url) may go, so that a callback is no way into the
operator's network.

A URL is checked twice: its form when the request is validated (http or https, a host, no
userinfo, at most MAX_URL_LENGTH characters: `parse_callback_url`), and where its host leads
(`resolve`) at StartEdit and again before every delivery, after DNS resolution: every address
the host resolves to must be public or in an allowed network, and the delivery then connects to
the address checked (webhook_http.py), so a name that resolves elsewhere a moment later (DNS
rebinding) reaches nothing new.

VIDEOEDIT_CALLBACK_ALLOW (Settings.callback_allow) holds hostnames, `*.domain` suffixes, IP
addresses and CIDR networks. Names restrict which hosts a callback may name (without any name
entry, any host may be named); addresses and networks allow those addresses, which are otherwise
refused unless public (loopback, private, link-local, unique-local, unspecified, multicast,
reserved, shared and documentation ranges).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class CallbackRefused(ValueError):
    """The callback URL, or where its host leads, is not allowed; the message says why (and
    holds the host at most, never the path or query, which may carry the receiver's secrets)."""


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL taken apart: what the delivery connects to and asks for."""

    scheme: str
    host: str  # lower-case hostname, or an IP address (IPv6 without brackets)
    port: int
    target: str  # path and query, for the request line

    @property
    def literal(self) -> IPAddress | None:
        """The host as an IP address, when it is one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_callback_url(url: str) -> CallbackTarget:
    """`url`'s parts; CallbackRefused saying what is wrong with its form."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"is {len(url)} characters long; at most {MAX_URL_LENGTH}")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise CallbackRefused("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:  # a bad port or IPv6 literal
        raise CallbackRefused(f"is not a valid URL ({err})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise CallbackRefused(f"scheme {scheme[:20]!r} is not allowed: http or https only")
    if "@" in parts.netloc:
        raise CallbackRefused("must not carry a user name or password (user:password@host)")
    host = (parts.hostname or "").lower()
    if not host:
        raise CallbackRefused("has no host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise CallbackRefused(
                f"host {host[:100]!r} is not a valid hostname (IDN names: give the xn-- form)"
            ) from None
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise CallbackRefused("an IPv6 zone (%) is not allowed")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CallbackTarget(scheme, host, port or (443 if scheme == "https" else 80), target)


def redact(url: str) -> str:
    """`url` without its query, fragment and userinfo (which may carry secrets): for logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}{'?…' if parts.query else ''}"


@dataclass(frozen=True)
class AllowList:
    """VIDEOEDIT_CALLBACK_ALLOW, parsed: host names and suffixes, and networks."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.com" for `*.example.com`
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> AllowList:
        """From Settings.callback_allow (entries checked there: config.callback_allow_list)."""
        names, suffixes, networks = set(), [], []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:])
                else:
                    names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def allows_host(self, target: CallbackTarget) -> bool:
        """Whether the URL may name this host: any host when no names are listed; else a listed
        name, a subdomain of a listed suffix, or an address literal in a listed network."""
        if not self.names and not self.suffixes:
            return True
        if target.host in self.names or target.host.endswith(self.suffixes):
            return True
        literal = target.literal
        return literal is not None and self.allows_address(literal)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)


def not_public(address: IPAddress) -> str | None:
    """Why `address` is no public address (None: it is one). An IPv4 address inside IPv6
    (mapped ::ffff:a.b.c.d, 6to4) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            return not_public(inner)
    for why, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),  # before private, which includes 240.0.0.0/4
        ("private", address.is_private),
    ):
        if test:
            return why
    return None if address.is_global else "not public"


def resolve(target: CallbackTarget, allow: AllowList) -> tuple[IPAddress, ...]:
    """The addresses `target`'s host resolves to, every one of them allowed (public, or in an
    allowed network); CallbackRefused saying which is not; OSError (socket.gaierror) when the
    name does not resolve now."""
    literal = target.literal
    if literal is None and not allow.allows_host(target):  # no lookup for a name that is not allowed anyway
        raise CallbackRefused(f"host {target.host!r} is not in VIDEOEDIT_CALLBACK_ALLOW")
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        # Drop IPv6 zone ids (`fe80::1%eth0`): the address is judged, and connected to, without.
        unique = dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found)
        addresses = tuple(unique)
        if not addresses:
            raise socket.gaierror(f"{target.host} has no address")
    for address in addresses:
        why = not_public(address)
        if why is not None and not allow.allows_address(address):
            shown = "" if literal is not None else f"{target.host!r} resolves to "
            article = "an" if why[0] in "aeiou" else "a"
            raise CallbackRefused(
                f"{shown}{address}, {article} {why} address, not allowed (VIDEOEDIT_CALLBACK_ALLOW may allow it)"
            )
    if literal is not None and not allow.allows_host(target):  # a public address, where names are required
        raise CallbackRefused(f"host {target.host!r} is not in VIDEOEDIT_CALLBACK_ALLOW")
    return addresses
