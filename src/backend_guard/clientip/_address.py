"""Client addresses as text: parsing, normalising, and the bucket an address counts in.

What lives here: reading an address out of what a peer or a forwarding header holds (a port, brackets, quotes,
IPv4-mapped IPv6 read away; anything that is not an address is refused), the canonical spelling of an address,
and the per-address bucket (IPv6 by its /64) the rate limiter and the lockout count in. No header is chosen or
believed here: that is the resolver's business (``_resolver``).
"""

from __future__ import annotations

import ipaddress
import socket

from .._cache import BoundedCache

__all__ = ["IPAddress", "address_bucket", "normalize_address", "normalized_peer", "parse_ip", "strip_port", "unquote"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PEER_CACHE_SIZE = 8192
_PEERS: BoundedCache[str, str] = BoundedCache("clientip.peers", max_entries=_PEER_CACHE_SIZE, max_bytes=2 << 20)


def parse_ip(text: str) -> IPAddress | None:
    """An address from ``text`` (no port, no brackets, no zone), IPv4-mapped IPv6 unwrapped, or None.

    Example::

        >>> parse_ip("::ffff:192.0.2.7")
        IPv4Address('192.0.2.7')
    """
    if not _plausible(text):
        return None
    dotted = _canonical_ipv4(text)
    if dotted is not None:  # the one canonical dotted quad (most addresses), read by the C library
        return ipaddress.IPv4Address(dotted)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return _unmapped(addr)


def _canonical_ipv4(text: str) -> bytes | None:
    """The four bytes of the IPv4 address ``text`` spells in its one canonical form, read by the C library, else
    None.

    Only a spelling the C library writes back the same is taken: ``ipaddress`` reads exactly those four decimal
    numbers the same way and writes them back as they are, so nothing it would refuse or read otherwise (leading
    zeros, fewer parts) passes here.
    """
    if type(text) is not str:  # a subclass may spell itself otherwise to ipaddress (through str())
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):  # not dotted-quad IPv4, or text no C string can hold (a NUL, a lone surrogate)
        return None
    return packed if socket.inet_ntop(socket.AF_INET, packed) == text else None


def _plausible(text: str) -> bool:
    """True for text that may be an address: not empty, not longer than any address, and no zone (``%eth0``)."""
    return 0 < len(text) <= 45 and "%" not in text


def _unmapped(addr: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 one (``::ffff:192.0.2.7``); any other address as it is."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def unquote(value: str) -> str:
    """``value`` without one pair of surrounding double quotes (RFC 7239 quoted values).

    Example::

        >>> unquote('"[2001:db8::1]:4711"')
        '[2001:db8::1]:4711'
    """
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def strip_port(text: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; a bare IPv6 address is left as it is.

    ``""`` when the port or the brackets are malformed (the caller then finds no address).

    Example::

        >>> strip_port("[2001:db8::1]:443"), strip_port("192.0.2.7:x")
        ('2001:db8::1', '')
    """
    text = unquote(text.strip())
    if text.startswith("["):
        return _bracketed(text)
    return _host_of(text) if text.count(":") == 1 else text


def _host_of(text: str) -> str:
    """The host of ``host:port`` (``""`` when the port is not a number)."""
    host, _, port = text.partition(":")
    return host if port.isdigit() else ""


def _bracketed(text: str) -> str:
    """The address inside ``[...]``, followed by nothing or by ``:port``; ``""`` otherwise."""
    end = text.find("]")
    if end == -1 or not _port_or_nothing(text[end + 1 :]):
        return ""
    return text[1:end]


def _port_or_nothing(rest: str) -> bool:
    """True for what may follow ``[address]``: nothing, or ``:`` and a port number."""
    return not rest or (rest.startswith(":") and rest[1:].isdigit())


def normalize_address(text: str) -> str | None:
    """The canonical text of an address (ports and brackets removed, IPv6 compressed), or None.

    Example::

        >>> normalize_address("[2001:DB8:0:0::1]:443")
        '2001:db8::1'
    """
    addr = parse_ip(strip_port(text))
    return None if addr is None else addr.compressed


def normalized_peer(peer: str) -> str:
    """``normalize_address`` for peer addresses, cached (bounded by entries and bytes); text that is no address
    is kept as it is.

    Example::

        >>> normalized_peer("[::1]:8000")
        '::1'
    """
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
    text = strip_port(address)
    if _canonical_ipv4(text) is not None:  # IPv4 as ipaddress writes it: its own bucket, with no object made
        return text
    addr = parse_ip(text)
    if isinstance(addr, ipaddress.IPv6Address) and ipv6_prefix < 128:
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return address if addr is None else addr.compressed
