"""Client address resolution through trusted proxies (sans-IO).

Why this is careful: ``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request. Only the
hops appended by proxies *we* run can be believed, so the chain is walked from the right (the hop nearest to us)
to the left, and the walk stops at the first hop that is not one of our trusted proxies: that hop is the client.
A header from a peer that is not a trusted proxy is never read at all. Anything that does not parse as an
address (``unknown``, obfuscated ``_hidden`` identifiers, garbage) ends the walk at the proxy that reported it,
so garbage can never make up an address; it falls back to a real one.

The scheme and host (used for HSTS and redirects) come from forwarding headers only through a trusted peer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError

__all__ = ["ClientIP", "ResolvedClient", "address_bucket", "normalize_address"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Of a longer forwarding header only the right-hand end of this length is read (whole items only).
MAX_HEADER_LENGTH = 2048
#: At most this many hops are examined.
MAX_HOPS = 20

_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?$")
_SCHEMES = frozenset({"http", "https", "ws", "wss"})


def _parse_ip(text: str) -> _IPAddress | None:
    """An address from ``text`` (no port, no brackets, no zone), IPv4-mapped IPv6 unwrapped, or None."""
    if not text or len(text) > 45 or "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _strip_port(text: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; a bare IPv6 address is left as it is."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return ""
        rest = text[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return ""
        return text[1:end]
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host if port.isdigit() else ""
    return text


def normalize_address(text: str) -> str | None:
    """The canonical text of an address (ports and brackets removed, IPv6 compressed), or None.

    Example::

        >>> normalize_address("[2001:DB8:0:0::1]:443")
        '2001:db8::1'
    """
    addr = _parse_ip(_strip_port(text))
    return None if addr is None else addr.compressed


_PEERS: dict[str, str] = {}
_PEER_CACHE_SIZE = 8192


def _normalized_peer(peer: str) -> str:
    """``normalize_address`` for peer addresses, cached (bounded: the cache is dropped when full)."""
    found = _PEERS.get(peer)
    if found is None:
        found = normalize_address(peer) or peer
        if len(_PEERS) >= _PEER_CACHE_SIZE:
            _PEERS.clear()
        _PEERS[peer] = found
    return found


def address_bucket(address: str, ipv6_prefix: int = 64) -> str:
    """The bucket an address counts in: IPv4 as it is, IPv6 by its ``/ipv6_prefix`` network.

    One IPv6 subscriber usually holds a whole /64, so per-address limits on IPv6 are per /64 by default.

    Example::

        >>> address_bucket("2001:db8::1")
        '2001:db8::/64'
    """
    addr = _parse_ip(address)
    if isinstance(addr, ipaddress.IPv6Address) and ipv6_prefix < 128:
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return address if addr is None else addr.compressed


@dataclass(frozen=True, slots=True)
class ResolvedClient:
    """The outcome of a resolution: the client address, the scheme and host the client used.

    ``proxied`` is True when forwarding headers were believed.

    Example::

        ResolvedClient(address="203.0.113.7", scheme="https", host="api.example.com", proxied=True)
    """

    address: str
    scheme: str
    host: str | None
    proxied: bool = False


def _split_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` elements as dicts of lower-cased parameter names (values unquoted)."""
    elements: list[dict[str, str]] = []
    for element in value.split(","):
        params: dict[str, str] = {}
        for pair in element.split(";"):
            name, sep, val = pair.partition("=")
            if not sep:
                continue
            val = val.strip()
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                val = val[1:-1]
            params[name.strip().lower()] = val
        elements.append(params)
    return elements


class ClientIP:
    """Resolve the real client address from the peer address and forwarding headers.

    ``trusted_proxies`` lists the addresses or CIDR networks of proxies you run (e.g. ``["10.0.0.0/8"]``);
    ``"unix"`` trusts a peer on a Unix socket (no address). With no trusted proxies (the default) forwarding
    headers are ignored and the peer address is the client.

    ``forwarded_header``: ``"x-forwarded-for"`` (default), ``"forwarded"`` (RFC 7239) or ``"any"`` (RFC 7239
    when present, else X-Forwarded-For).

    Example::

        cip = ClientIP(trusted_proxies=["10.0.0.0/8"])
        cip.resolve("10.0.0.5", {"x-forwarded-for": "198.51.100.2, 10.0.0.9"}).address   # '198.51.100.2'
    """

    def __init__(
        self,
        trusted_proxies: Iterable[str] = (),
        *,
        forwarded_header: str = "x-forwarded-for",
    ) -> None:
        networks: list[_Network] = []
        self.trust_unix = False
        for entry in trusted_proxies:
            if entry == "unix":
                self.trust_unix = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(f"trusted_proxies: {entry!r} is not an address or CIDR network.") from exc
        if forwarded_header not in ("x-forwarded-for", "forwarded", "any"):
            raise ConfigurationError("forwarded_header must be 'x-forwarded-for', 'forwarded' or 'any'.")
        self.networks: tuple[_Network, ...] = tuple(networks)
        self.forwarded_header = forwarded_header
        self.enabled = bool(networks) or self.trust_unix

    def __repr__(self) -> str:
        return f"ClientIP(trusted_proxies={[str(n) for n in self.networks]!r})"

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` is one of the trusted proxies (None: a Unix socket peer)."""
        if address is None or address == "":
            return self.trust_unix
        addr = _parse_ip(address)
        return addr is not None and any(addr in net for net in self.networks)

    def _is_trusted_ip(self, addr: _IPAddress) -> bool:
        return any(addr in net for net in self.networks)

    def resolve(
        self,
        peer: str | None,
        headers: Mapping[str, str],
        *,
        scheme: str = "http",
        host: str | None = None,
    ) -> ResolvedClient:
        """Resolve from plain values: ``headers`` maps lower-case names to (comma-joined) values.

        Example::

            cip.resolve("10.0.0.5", {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"})
        """
        peer_text = "" if peer is None else _normalized_peer(peer)
        if not self.enabled or not self.is_trusted(peer):
            return ResolvedClient(peer_text, scheme, host)

        use_forwarded = self.forwarded_header == "forwarded" or (
            self.forwarded_header == "any" and "forwarded" in headers
        )
        raw = headers.get("forwarded" if use_forwarded else "x-forwarded-for")
        if raw and len(raw) > MAX_HEADER_LENGTH:
            # Our proxies append on the right: keep the right-hand end, dropping the item the cut fell in. (Not
            # reading the header at all would let any client choose to be counted as the proxy itself.)
            raw = raw[-MAX_HEADER_LENGTH:].partition(",")[2]
        if not raw:
            return ResolvedClient(peer_text, scheme, host)

        if use_forwarded:
            elements = _split_forwarded(raw)[-MAX_HOPS:]
            hops = [e.get("for", "") for e in elements]
        else:
            elements = []
            hops = raw.split(",")[-MAX_HOPS:]

        client = peer_text
        chosen = -1
        for index in range(len(hops) - 1, -1, -1):
            addr = _parse_ip(_strip_port(hops[index]))
            if addr is None:
                break  # garbage or an obfuscated hop: keep the proxy that reported it
            client = addr.compressed
            chosen = index
            if not self._is_trusted_ip(addr):
                break
        if chosen == -1:
            return ResolvedClient(peer_text, scheme, host)

        new_scheme, new_host = scheme, host
        if use_forwarded:
            params = elements[chosen]
            proto, fhost = params.get("proto"), params.get("host")
        else:
            proto = _last(headers.get("x-forwarded-proto"))
            fhost = _last(headers.get("x-forwarded-host"))
        if proto and proto.lower() in _SCHEMES:
            new_scheme = proto.lower()
        if fhost and len(fhost) <= 260 and _HOST_RE.match(fhost):
            new_host = fhost
        return ResolvedClient(client, new_scheme, new_host, proxied=True)

    def resolve_scope(self, scope: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from an ASGI ``http``/``websocket`` scope.

        Example::

            client = cip.resolve_scope(scope)
        """
        peer = scope.get("client")
        peer_addr = peer[0] if peer else None
        scheme = scope.get("scheme", "http")
        host_header = None
        wanted: dict[str, str] = {}
        if self.enabled and self.is_trusted(peer_addr):
            for name, value in scope.get("headers", ()):
                lname = name.decode("latin-1").lower()
                if lname in _FORWARDING:
                    text = value.decode("latin-1")
                    wanted[lname] = f"{wanted[lname]},{text}" if lname in wanted else text
                elif lname == "host":
                    host_header = value.decode("latin-1")
        return self.resolve(peer_addr, wanted, scheme=scheme, host=host_header)

    def resolve_environ(self, environ: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from a WSGI ``environ``.

        Example::

            client = cip.resolve_environ(environ)
        """
        peer = environ.get("REMOTE_ADDR")
        scheme = environ.get("wsgi.url_scheme", "http")
        wanted: dict[str, str] = {}
        if self.enabled and self.is_trusted(peer):
            for lname, key in _ENVIRON_KEYS.items():
                value = environ.get(key)
                if value:
                    wanted[lname] = value
        return self.resolve(peer, wanted, scheme=scheme, host=environ.get("HTTP_HOST"))

    def from_scope(self, scope: Mapping[str, Any]) -> str:
        """The client address for an ASGI scope.

        Example::

            ClientIP(["10.0.0.0/8"]).from_scope(scope)   # '203.0.113.7'
        """
        return self.resolve_scope(scope).address

    def from_environ(self, environ: Mapping[str, Any]) -> str:
        """The client address for a WSGI environ.

        Example::

            ClientIP(["10.0.0.0/8"]).from_environ(environ)   # '203.0.113.7'
        """
        return self.resolve_environ(environ).address


_FORWARDING = frozenset({"x-forwarded-for", "forwarded", "x-forwarded-proto", "x-forwarded-host"})
_ENVIRON_KEYS = {
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
}


def _last(value: str | None) -> str | None:
    """The right-most item of a comma-separated header (the one our own proxy wrote)."""
    if not value:
        return None
    return value.rsplit(",", 1)[-1].strip()
