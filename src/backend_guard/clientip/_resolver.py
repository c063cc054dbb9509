"""The resolver: which peer is believed, which forwarding header it is believed for, and the walk over its hops.

What lives here: :class:`ClientIP`, its settings (trusted proxies, the one header family and the fields the
proxy writes) and its decisions: a peer that is not a trusted proxy is never believed; the address is walked
from the right and stops at the first hop that is not a trusted proxy (or is garbage); a forwarded scheme and
host are used only when declared and well formed. Reading and rewriting a scope or an environ is in
``_requests``; parsing addresses and header values in ``_address`` and ``_forwarding``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from .._cache import BoundedCache
from .._check import check_choice, check_strs
from ..exceptions import ConfigurationError
from ._address import IPAddress, normalized_peer, parse_ip, strip_port
from ._forwarding import (
    FIELDS,
    MAX_HOPS,
    XF_HEADERS,
    forwarded_request,
    last_item,
    split_forwarded,
    tail,
)
from ._requests import (
    ENVIRON_KEYS,
    RESOLVED_KEY,
    ResolvedClient,
    as_websocket,
    environ_values,
    recorded,
    rewrite_environ,
    rewrite_scope,
    scope_values,
)

__all__ = ["ClientIP"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (address, proto, host) as a forwarding header reports them (proto and host None when not reported).
_Forwarded = tuple[str, str | None, str | None]


def _trust_memory() -> BoundedCache[str, bool]:
    """Whether a peer is a trusted proxy, per peer text: asked on every request, of a few proxies' addresses (or,
    for an app clients also reach directly, of theirs: bounded)."""
    return BoundedCache("clientip.trusted_peers", max_entries=4096, max_bytes=1 << 20)


def _network(entry: str) -> _Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError as exc:
        raise ConfigurationError(f"trusted_proxies: {entry!r} is not an address or CIDR network.") from exc


def _networks(entries: Iterable[str]) -> tuple[_Network, ...]:
    """The trusted networks among ``entries`` (``"unix"``, the Unix socket peer, is no network)."""
    return tuple(_network(entry) for entry in entries if entry != "unix")


def _check_forwarded_header(forwarded_header: str) -> None:
    if forwarded_header == "any":
        raise ConfigurationError(
            "forwarded_header: 'any' is no longer accepted: it believed a client-written Forwarded header "
            "that a proxy appending only X-Forwarded-For passes through. Set it to the header your proxy "
            "writes: 'x-forwarded-for' or 'forwarded'."
        )
    if forwarded_header not in ("x-forwarded-for", "forwarded"):
        raise ConfigurationError("forwarded_header must be 'x-forwarded-for' or 'forwarded'.")


def _check_fields(forwarded_fields: Iterable[str]) -> frozenset[str]:
    fields = check_strs("forwarded_fields", forwarded_fields)
    if not set(fields) <= set(FIELDS):
        raise ConfigurationError("forwarded_fields must list some of 'for', 'proto' and 'host'.")
    return frozenset(fields)


def _header_names(forwarded_header: str, fields: frozenset[str]) -> frozenset[str]:
    """The header names a resolver reads: only what the declared proxy writes."""
    if forwarded_header == "forwarded":
        return frozenset({"forwarded"} if fields else ())
    return frozenset(XF_HEADERS[f] for f in fields)


def _peer_text(peer: str | None) -> str:
    """The peer's address in its canonical spelling (``""`` for a Unix socket peer; kept as it is when it is
    no address)."""
    return "" if peer is None else normalized_peer(peer)


def _peer_address(scope: Mapping[str, Any]) -> str | None:
    """The address of an ASGI scope's ``client`` (None without one: a Unix socket peer)."""
    peer = scope.get("client")
    return peer[0] if peer else None


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
        networks = _networks(trusted_proxies)
        _check_forwarded_header(forwarded_header)
        self.trust_unix = "unix" in trusted_proxies
        self._networks = networks
        self.forwarded_header = forwarded_header
        self.forwarded_fields: frozenset[str] = _check_fields(forwarded_fields)
        self.enabled = bool(networks) or self.trust_unix
        names = _header_names(forwarded_header, self.forwarded_fields)
        self._names: frozenset[str] = names
        self._environ_keys: tuple[tuple[str, str], ...] = tuple((n, ENVIRON_KEYS[n]) for n in sorted(names))
        self._trusted_peers = _trust_memory()

    @property
    def networks(self) -> tuple[_Network, ...]:
        """The trusted proxies' networks (fixed at construction, as every answer read from them)."""
        return self._networks

    def __getstate__(self) -> dict[str, Any]:
        """A copy or a pickle carries the settings, not what was remembered (nor its lock)."""
        state = self.__dict__.copy()
        del state["_trusted_peers"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._trusted_peers = _trust_memory()

    def __repr__(self) -> str:
        return (
            f"ClientIP(trusted_proxies={[str(n) for n in self.networks]!r}, "
            f"forwarded_header={self.forwarded_header!r}, forwarded_fields={sorted(self.forwarded_fields)!r})"
        )

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` is one of the trusted proxies (None: a Unix socket peer)."""
        if not address:  # None or "": a Unix socket peer
            return self.trust_unix
        if type(address) is not str:  # remembered for plain text only (a subclass may spell itself otherwise)
            return self._is_trusted_text(address)
        trusted = self._trusted_peers.get(address)
        if trusted is None:
            trusted = self._is_trusted_text(address)
            self._trusted_peers.put(address, trusted)  # bounded: a peer address may be a client's
        return trusted

    def _is_trusted_text(self, address: str) -> bool:
        addr = parse_ip(address)
        return addr is not None and self._is_trusted_ip(addr)

    def _is_trusted_ip(self, addr: IPAddress) -> bool:
        return any(addr in net for net in self._networks)

    def _believes(self, peer: str | None) -> bool:
        """True when forwarding headers from ``peer`` are read at all (a trusted proxy of an enabled resolver)."""
        return self.enabled and self.is_trusted(peer)

    def _walk(self, hops: list[str], peer_text: str) -> tuple[str, int]:
        """(the client address, the index of the hop the walk stopped at) over ``hops``, right to left.

        The stop index is the right-most hop that is not a trusted proxy's address (or garbage, or the
        left-most when all are trusted): the item at that index was written by a proxy we trust."""
        client = peer_text
        index = len(hops) - 1
        while index >= 0:
            addr = parse_ip(strip_port(hops[index]))
            if addr is None:
                break  # garbage or an obfuscated hop: keep the proxy that reported it
            client = addr.compressed
            if not self.is_trusted(client) or index == 0:  # its canonical text: remembered as a peer's is
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
        if not self._believes(peer):
            return ResolvedClient(_peer_text(peer), scheme, host)
        return self._resolve_forwarded(_peer_text(peer), headers, scheme, host)

    def _resolve_forwarded(
        self, peer_text: str, headers: Mapping[str, str], scheme: str, host: str | None
    ) -> ResolvedClient:
        """The resolution for a peer whose forwarding headers are believed."""
        address, proto, fhost = self._forwarded(headers, peer_text)
        new_scheme, new_host, applied = forwarded_request(scheme, host, proto, fhost)
        return ResolvedClient(address, new_scheme, new_host, proxied=applied or address != peer_text)

    def _forwarded(self, headers: Mapping[str, str], peer_text: str) -> _Forwarded:
        """(address, proto, host) from the one header family the proxy is declared to write."""
        if self.forwarded_header == "forwarded":
            return self._from_forwarded(headers.get("forwarded"), peer_text)
        return self._from_x_forwarded(headers, peer_text)

    def _from_x_forwarded(self, headers: Mapping[str, str], peer_text: str) -> _Forwarded:
        """(address, proto, host) from ``X-Forwarded-*``: the address walked right to left, proto and host the
        right-most values (the ones the trusted peer wrote, or passed on from our proxy before it)."""
        address = self._address_of(self._x_forwarded(headers, "for"), peer_text)
        return address, last_item(self._x_forwarded(headers, "proto")), last_item(self._x_forwarded(headers, "host"))

    def _x_forwarded(self, headers: Mapping[str, str], field: str) -> str | None:
        """The ``X-Forwarded-*`` header of ``field``; None when the proxy is not declared to write it."""
        return headers.get(XF_HEADERS[field]) if field in self.forwarded_fields else None

    def _address_of(self, value: str | None, peer_text: str) -> str:
        """The client address an ``X-Forwarded-For`` value gives (the peer's when it is empty)."""
        raw = tail(value)
        if not raw:
            return peer_text
        return self._walk(raw.split(",")[-MAX_HOPS:], peer_text)[0]

    def _from_forwarded(self, raw: str | None, peer_text: str) -> _Forwarded:
        """(address, proto, host) from an RFC 7239 ``Forwarded`` header: the address walked right to left,
        proto and host from the element the outermost trusted proxy appended (each only when declared)."""
        raw = tail(raw)
        if not raw:
            return peer_text, None, None
        elements = split_forwarded(raw)[-MAX_HOPS:]
        address, index = self._forwarded_for(elements, peer_text)
        element = elements[index]
        return address, self._declared(element, "proto"), self._declared(element, "host")

    def _forwarded_for(self, elements: list[dict[str, str]], peer_text: str) -> tuple[str, int]:
        """(address, index of the element it stopped at); the peer and the last element when ``for`` is not
        declared."""
        if "for" not in self.forwarded_fields:
            return peer_text, len(elements) - 1
        return self._walk([e.get("for", "") for e in elements], peer_text)

    def _declared(self, element: Mapping[str, str], name: str) -> str | None:
        return element.get(name) if name in self.forwarded_fields else None

    def resolve_scope(self, scope: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from an ASGI ``http``/``websocket`` scope (the recorded result when a layer resolved it).

        Example::

            client = cip.resolve_scope(scope)
        """
        found = recorded(scope)
        if found is not None:
            return found
        peer = _peer_address(scope)
        scheme = scope.get("scheme", "http")
        # The peer is asked about once: forwarding headers (and the Host header) are read only when believed.
        if not self._believes(peer):
            return as_websocket(scope, ResolvedClient(_peer_text(peer), scheme, None))
        wanted, host_header = scope_values(scope.get("headers", ()), self._names)
        return as_websocket(scope, self._resolve_forwarded(_peer_text(peer), wanted, scheme, host_header))

    def resolve_environ(self, environ: Mapping[str, Any]) -> ResolvedClient:
        """Resolve from a WSGI ``environ`` (the recorded result when a layer resolved it).

        Example::

            client = cip.resolve_environ(environ)
        """
        found = recorded(environ)
        if found is not None:
            return found
        peer = environ.get("REMOTE_ADDR")
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not self._believes(peer):
            return ResolvedClient(_peer_text(peer), scheme, host)
        return self._resolve_forwarded(_peer_text(peer), environ_values(environ, self._environ_keys), scheme, host)

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
        found = recorded(scope)
        if found is not None:
            return found
        if resolved is None:
            resolved = self.resolve_scope(scope)
        if self.enabled:
            rewrite_scope(scope, resolved)
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
        found = recorded(environ)
        if found is not None:
            return found
        resolved = self.resolve_environ(environ)
        if self.enabled:
            rewrite_environ(environ, resolved)
        return resolved

    def from_scope(self, scope: Mapping[str, Any]) -> str:
        """The client address for an ASGI scope.

        Example::

            ClientIP(["10.0.0.0/8"]).from_scope(scope)   # '203.0.113.7'
        """
        if not self.enabled and RESOLVED_KEY not in scope:  # no proxy trusted, none resolved: the peer
            return _peer_text(_peer_address(scope))
        return self.resolve_scope(scope).address

    def from_environ(self, environ: Mapping[str, Any]) -> str:
        """The client address for a WSGI environ.

        Example::

            ClientIP(["10.0.0.0/8"]).from_environ(environ)   # '203.0.113.7'
        """
        if not self.enabled and RESOLVED_KEY not in environ:  # no proxy trusted, none resolved: the peer
            return _peer_text(environ.get("REMOTE_ADDR"))
        return self.resolve_environ(environ).address
