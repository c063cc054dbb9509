"""Client address resolution through trusted proxies (sans-IO).

Why this is careful: ``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request. Only the
hops appended by proxies *we* run can be believed, so the chain is walked from the right (the hop nearest to us)
to the left, and the walk stops at the first hop that is not one of our trusted proxies: that hop is the client.
A header from a peer that is not a trusted proxy is never read at all. Anything that does not parse as an
address (``unknown``, obfuscated ``_hidden`` identifiers, garbage) ends the walk at the proxy that reported it,
so garbage can never make up an address; it falls back to a real one.

The scheme and host (used for HSTS and redirects) come from forwarding headers only through a trusted peer.
Each forwarded value (the address, the scheme, the host) is applied on its own, from the one header family the
proxy is declared to write (``X-Forwarded-*`` or RFC 7239 ``Forwarded``, never a mix), and only the values the
proxy is declared to write (``forwarded_fields``): a header the proxy passes through untouched is the client's.

Resolved once per request: the outermost layer that trusts proxies records its :class:`ResolvedClient` in the
request (``scope[RESOLVED_KEY]`` / ``environ[RESOLVED_KEY]``) and rewrites the request the way werkzeug's
ProxyFix does (ASGI ``client``, ``scheme`` and ``Host``; WSGI ``REMOTE_ADDR``, ``wsgi.url_scheme`` and
``HTTP_HOST``), keeping the originals under ``ORIGINAL_KEY``. Every later resolution of that request returns
the recorded result: forwarding headers are never applied twice.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .._cache import BoundedCache
from .._check import check_choice, check_strs
from ..exceptions import ConfigurationError

__all__ = [
    "FIELDS",
    "ORIGINAL_KEY",
    "RESOLVED_KEY",
    "ClientIP",
    "ResolvedClient",
    "address_bucket",
    "normalize_address",
]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Of a longer forwarding header only the right-hand end of this length is read (whole items only).
MAX_HEADER_LENGTH = 2048
#: At most this many hops are examined.
MAX_HOPS = 20

#: The request key (ASGI scope, WSGI environ) holding the request's :class:`ResolvedClient`, once resolved.
RESOLVED_KEY = "backend_guard.client"
#: The request key holding the values the rewrite replaced (like werkzeug's ``werkzeug.proxy_fix.orig``):
#: ASGI ``{"client", "scheme", "host"}``, WSGI ``{"REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST"}``.
ORIGINAL_KEY = "backend_guard.client.orig"
#: The values a proxy may be declared to write: the client address, the scheme, the host.
FIELDS = ("for", "proto", "host")

#: A whole host value (``fullmatch``: ``$`` would also let a trailing newline through).
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?")
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


_PEER_CACHE_SIZE = 8192
_PEERS: BoundedCache[str, str] = BoundedCache("clientip.peers", max_entries=_PEER_CACHE_SIZE, max_bytes=2 << 20)


def _normalized_peer(peer: str) -> str:
    """``normalize_address`` for peer addresses, cached (bounded by entries and bytes)."""
    found = _PEERS.get(peer)
    if found is None:
        found = normalize_address(peer) or peer
        _PEERS.put(peer, found)
    return found


def address_bucket(address: str, ipv6_prefix: int = 64) -> str:
    """The bucket an address counts in: IPv4 as it is, IPv6 by its ``/ipv6_prefix`` network.

    One IPv6 subscriber usually holds a whole /64, so per-address limits on IPv6 are per /64 by default. Any
    spelling of one address counts in one bucket: a port, brackets, IPv4-mapped IPv6 and case are read away
    (text that is no address at all is its own bucket).

    Example::

        >>> address_bucket("2001:db8::1")
        '2001:db8::/64'
        >>> address_bucket("192.0.2.7:5678")
        '192.0.2.7'
    """
    addr = _parse_ip(_strip_port(address))
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
    """Resolve the real client address (and scheme, host) from the peer address and forwarding headers.

    ``trusted_proxies`` lists the addresses or CIDR networks of proxies you run (e.g. ``["10.0.0.0/8"]``);
    ``"unix"`` trusts a peer on a Unix socket (no address). With no trusted proxies (the default) forwarding
    headers are ignored and the peer address is the client.

    ``forwarded_header`` names the one header family your proxy writes: ``"x-forwarded-for"`` (default:
    ``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``) or ``"forwarded"`` (RFC 7239). The other
    family is never read: the proxy passes it through from the client. ``forwarded_fields`` names the values
    the proxy writes, among :data:`FIELDS`: ``("for", "proto")`` by default (like werkzeug's ProxyFix); add
    ``"host"`` only when the proxy sets ``X-Forwarded-Host`` (or ``host=``) itself. Each one is applied on its
    own: a proxy that sets only ``X-Forwarded-Proto: https`` makes the request HTTPS.

    Example::

        cip = ClientIP(trusted_proxies=["10.0.0.0/8"])
        cip.resolve("10.0.0.5", {"x-forwarded-for": "198.51.100.2, 10.0.0.9"}).address   # '198.51.100.2'
    """

    def __init__(
        self,
        trusted_proxies: Iterable[str] = (),
        *,
        forwarded_header: str = "x-forwarded-for",
        forwarded_fields: Iterable[str] = ("for", "proto"),
    ) -> None:
        trusted_proxies = check_strs("trusted_proxies", trusted_proxies)
        check_choice("forwarded_header", forwarded_header, ("x-forwarded-for", "forwarded", "any"))
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
        if forwarded_header == "any":
            raise ConfigurationError(
                "forwarded_header: 'any' is no longer accepted: it believed a client-written Forwarded header "
                "that a proxy appending only X-Forwarded-For passes through. Set it to the header your proxy "
                "writes: 'x-forwarded-for' or 'forwarded'."
            )
        if forwarded_header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError("forwarded_header must be 'x-forwarded-for' or 'forwarded'.")
        fields = check_strs("forwarded_fields", forwarded_fields)
        if not set(fields) <= set(FIELDS):
            raise ConfigurationError("forwarded_fields must list some of 'for', 'proto' and 'host'.")
        self.networks: tuple[_Network, ...] = tuple(networks)
        self.forwarded_header = forwarded_header
        self.forwarded_fields: frozenset[str] = frozenset(fields)
        self.enabled = bool(networks) or self.trust_unix
        # The header names this resolver reads: only what the declared proxy writes.
        if forwarded_header == "forwarded":
            names = {"forwarded"} if self.forwarded_fields else set()
        else:
            names = {_XF_HEADERS[f] for f in self.forwarded_fields}
        self._names: frozenset[str] = frozenset(names)
        self._environ_keys: tuple[tuple[str, str], ...] = tuple((n, _ENVIRON_KEYS[n]) for n in sorted(names))

    def __repr__(self) -> str:
        return (
            f"ClientIP(trusted_proxies={[str(n) for n in self.networks]!r}, "
            f"forwarded_header={self.forwarded_header!r}, forwarded_fields={sorted(self.forwarded_fields)!r})"
        )

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` is one of the trusted proxies (None: a Unix socket peer)."""
        if address is None or address == "":
            return self.trust_unix
        addr = _parse_ip(address)
        return addr is not None and any(addr in net for net in self.networks)

    def _is_trusted_ip(self, addr: _IPAddress) -> bool:
        return any(addr in net for net in self.networks)

    def _walk(self, hops: list[str], peer_text: str) -> tuple[str, int]:
        """(the client address, the index of the hop the walk stopped at) over ``hops``, right to left.

        The stop index is the right-most hop that is not a trusted proxy's address (or garbage, or the
        left-most when all are trusted): the item at that index was written by a proxy we trust."""
        client = peer_text
        index = len(hops) - 1
        while index >= 0:
            addr = _parse_ip(_strip_port(hops[index]))
            if addr is None:
                break  # garbage or an obfuscated hop: keep the proxy that reported it
            client = addr.compressed
            if not self._is_trusted_ip(addr) or index == 0:
                break
            index -= 1
        return client, index

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
        fields = self.forwarded_fields
        if self.forwarded_header == "forwarded":
            address, proto, fhost = self._from_forwarded(headers.get("forwarded"), peer_text)
        else:
            address = peer_text
            if "for" in fields:
                raw = _tail(headers.get("x-forwarded-for"))
                if raw:
                    address = self._walk(raw.split(",")[-MAX_HOPS:], peer_text)[0]
            # The right-most value: the one the trusted peer wrote (or passed on from our proxy before it).
            proto = _last(headers.get("x-forwarded-proto")) if "proto" in fields else None
            fhost = _last(headers.get("x-forwarded-host")) if "host" in fields else None
        proxied = address != peer_text
        new_scheme, new_host = scheme, host
        if proto and proto.lower() in _SCHEMES:
            # Of the request's own kind: an HTTP request is http or https, a WebSocket ws or wss.
            kind = _WS_SCHEMES if scheme in ("ws", "wss") else _HTTP_SCHEMES
            new_scheme = kind.get(proto.lower(), proto.lower())
            proxied = True
        if fhost and len(fhost) <= 260 and _HOST_RE.fullmatch(fhost):
            new_host = fhost
            proxied = True
        return ResolvedClient(address, new_scheme, new_host, proxied=proxied)

    def _from_forwarded(self, raw: str | None, peer_text: str) -> tuple[str, str | None, str | None]:
        """(address, proto, host) from an RFC 7239 ``Forwarded`` header: the address walked right to left,
        proto and host from the element the outermost trusted proxy appended (each only when declared)."""
        raw = _tail(raw)
        if not raw:
            return peer_text, None, None
        elements = _split_forwarded(raw)[-MAX_HOPS:]
        fields = self.forwarded_fields
        address, index = peer_text, len(elements) - 1
        if "for" in fields:
            address, index = self._walk([e.get("for", "") for e in elements], peer_text)
        element = elements[index]
        return (
            address,
            element.get("proto") if "proto" in fields else None,
            element.get("host") if "host" in fields else None,
        )

    def resolve_scope(self, scope: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from an ASGI ``http``/``websocket`` scope (the recorded result when a layer resolved it).

        Example::

            client = cip.resolve_scope(scope)
        """
        found = scope.get(RESOLVED_KEY)
        if isinstance(found, ResolvedClient):
            return found
        peer = scope.get("client")
        peer_addr = peer[0] if peer else None
        scheme = scope.get("scheme", "http")
        host_header = None
        wanted: dict[str, str] = {}
        if self.enabled and self.is_trusted(peer_addr):
            names = self._names
            for name, value in scope.get("headers", ()):
                lname = name.decode("latin-1").lower()
                if lname in names:
                    text = value.decode("latin-1")
                    wanted[lname] = f"{wanted[lname]},{text}" if lname in wanted else text
                elif lname == "host":
                    host_header = value.decode("latin-1")
        resolved = self.resolve(peer_addr, wanted, scheme=scheme, host=host_header)
        if scope.get("type") == "websocket" and resolved.scheme in _WS_SCHEMES:
            resolved = ResolvedClient(resolved.address, _WS_SCHEMES[resolved.scheme], resolved.host, resolved.proxied)
        return resolved

    def resolve_environ(self, environ: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from a WSGI ``environ`` (the recorded result when a layer resolved it).

        Example::

            client = cip.resolve_environ(environ)
        """
        found = environ.get(RESOLVED_KEY)
        if isinstance(found, ResolvedClient):
            return found
        peer = environ.get("REMOTE_ADDR")
        scheme = environ.get("wsgi.url_scheme", "http")
        wanted: dict[str, str] = {}
        if self.enabled and self.is_trusted(peer):
            for lname, key in self._environ_keys:
                value = environ.get(key)
                if value:
                    wanted[lname] = value
        return self.resolve(peer, wanted, scheme=scheme, host=environ.get("HTTP_HOST"))

    def apply_scope(self, scope: MutableMapping[str, Any], resolved: ResolvedClient | None = None) -> ResolvedClient:
        """Resolve an ASGI scope once, record the result and rewrite the scope (like uvicorn's proxy headers).

        ``scope["client"]``, ``scope["scheme"]`` and the ``host`` header become the resolved values (the old
        ones are kept under :data:`ORIGINAL_KEY`), and ``scope[RESOLVED_KEY]`` holds the
        :class:`ResolvedClient` that every later layer, decorator and helper of the request uses. A scope
        already resolved is left as it is; a ClientIP trusting no proxy changes nothing. ``resolved`` records
        a result resolved elsewhere (the same request seen through another protocol).

        Example::

            cip.apply_scope(scope)
            scope["client"]   # ('203.0.113.7', 0)
        """
        found = scope.get(RESOLVED_KEY)
        if isinstance(found, ResolvedClient):
            return found
        if resolved is None:
            resolved = self.resolve_scope(scope)
        if not self.enabled:
            return resolved
        headers = scope.get("headers", ())
        host = next((v for k, v in headers if k.lower() == b"host"), None)
        scope[ORIGINAL_KEY] = {"client": scope.get("client"), "scheme": scope.get("scheme"), "host": host}
        scope[RESOLVED_KEY] = resolved
        if resolved.proxied:
            peer = scope.get("client")
            # No address (a Unix socket peer, only the scheme forwarded): the client stays unknown, not "".
            if resolved.address and (not peer or peer[0] != resolved.address):
                scope["client"] = (resolved.address, 0)
            scope["scheme"] = resolved.scheme
            new_host = None if resolved.host is None else resolved.host.encode("latin-1")
            if new_host is not None and new_host != host:
                scope["headers"] = [(k, v) for k, v in headers if k.lower() != b"host"] + [(b"host", new_host)]
        return resolved

    def apply_environ(self, environ: MutableMapping[str, Any]) -> ResolvedClient:
        """Resolve a WSGI environ once, record the result and rewrite the environ (like werkzeug's ProxyFix).

        ``REMOTE_ADDR``, ``wsgi.url_scheme`` and ``HTTP_HOST`` become the resolved values (the old ones are
        kept under :data:`ORIGINAL_KEY`), and ``environ[RESOLVED_KEY]`` holds the :class:`ResolvedClient`. An
        environ already resolved is left as it is; a ClientIP trusting no proxy changes nothing.

        Example::

            cip.apply_environ(environ)
            environ["REMOTE_ADDR"]   # '203.0.113.7'
        """
        found = environ.get(RESOLVED_KEY)
        if isinstance(found, ResolvedClient):
            return found
        resolved = self.resolve_environ(environ)
        if not self.enabled:
            return resolved
        environ[ORIGINAL_KEY] = {key: environ.get(key) for key in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST")}
        environ[RESOLVED_KEY] = resolved
        if resolved.proxied:
            if resolved.address:
                environ["REMOTE_ADDR"] = resolved.address
            environ["wsgi.url_scheme"] = resolved.scheme
            if resolved.host is not None:
                environ["HTTP_HOST"] = resolved.host
        return resolved

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


_XF_HEADERS = {"for": "x-forwarded-for", "proto": "x-forwarded-proto", "host": "x-forwarded-host"}
_ENVIRON_KEYS = {
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
}
_WS_SCHEMES = {"http": "ws", "https": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def _tail(raw: str | None) -> str | None:
    """``raw``, or of a header over :data:`MAX_HEADER_LENGTH` its right-hand end (whole items only).

    Our proxies append on the right: keep that end, dropping the item the cut fell in. (Not reading the header
    at all would let any client choose to be counted as the proxy itself.)"""
    if raw and len(raw) > MAX_HEADER_LENGTH:
        return raw[-MAX_HEADER_LENGTH:].partition(",")[2]
    return raw


def _last(value: str | None) -> str | None:
    """The right-most item of a comma-separated header (the one our own proxy wrote)."""
    if not value:
        return None
    return value.rsplit(",", 1)[-1].strip()
