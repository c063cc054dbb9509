"""Forwarding headers as values: ``Forwarded`` elements, the right-hand end of a long header, the scheme and the
host a proxy reports.

What lives here: the bounded reading of what our proxies append (only the right-hand :data:`MAX_HEADER_LENGTH`
characters, at most :data:`MAX_HOPS` hops), RFC 7239 parameter parsing, and the checks a forwarded scheme or host
must pass before it is used. Which header is read, and from which peer, is the resolver's decision
(``_resolver``).
"""

from __future__ import annotations

import re

from ._address import unquote

__all__ = [
    "FIELDS",
    "MAX_HEADER_LENGTH",
    "MAX_HOPS",
    "WS_SCHEMES",
    "XF_HEADERS",
    "forwarded_host",
    "forwarded_request",
    "forwarded_scheme",
    "last_item",
    "split_forwarded",
    "tail",
]

#: Of a longer forwarding header only the right-hand end of this length is read (whole items only).
MAX_HEADER_LENGTH = 2048
#: At most this many hops are examined.
MAX_HOPS = 20
#: The values a proxy may be declared to write: the client address, the scheme, the host.
FIELDS = ("for", "proto", "host")
#: The ``X-Forwarded-*`` header carrying each field.
XF_HEADERS = {"for": "x-forwarded-for", "proto": "x-forwarded-proto", "host": "x-forwarded-host"}

#: A whole host value (``fullmatch``: ``$`` would also let a trailing newline through).
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?")
_MAX_HOST_LENGTH = 260
_SCHEMES = frozenset({"http", "https", "ws", "wss"})
WS_SCHEMES = {"http": "ws", "https": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def split_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` elements as dicts of lower-cased parameter names (values unquoted).

    Example::

        >>> split_forwarded('for="[2001:db8::1]";proto=https, for=10.0.0.9')
        [{'for': '[2001:db8::1]', 'proto': 'https'}, {'for': '10.0.0.9'}]
    """
    return [_parameters(element) for element in value.split(",")]


def _parameters(element: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in element.split(";"):
        name, sep, val = pair.partition("=")
        if sep:
            params[name.strip().lower()] = unquote(val.strip())
    return params


def tail(raw: str | None) -> str | None:
    """``raw``, or of a header over :data:`MAX_HEADER_LENGTH` its right-hand end (whole items only).

    Our proxies append on the right: keep that end, dropping the item the cut fell in. (Not reading the header
    at all would let any client choose to be counted as the proxy itself.)

    Example::

        >>> tail("198.51.100.2, 10.0.0.9")
        '198.51.100.2, 10.0.0.9'
    """
    if raw and len(raw) > MAX_HEADER_LENGTH:
        return raw[-MAX_HEADER_LENGTH:].partition(",")[2]
    return raw


def last_item(value: str | None) -> str | None:
    """The right-most item of a comma-separated header (the one our own proxy wrote).

    Example::

        >>> last_item("http, https ")
        'https'
    """
    if not value:
        return None
    return value.rsplit(",", 1)[-1].strip()


def forwarded_scheme(scheme: str, proto: str | None) -> str | None:
    """The scheme a forwarded ``proto`` gives a request of ``scheme``; None when ``proto`` is none we know.

    Of the request's own kind: an HTTP request is http or https, a WebSocket ws or wss.

    Example::

        >>> forwarded_scheme("ws", "https")
        'wss'
    """
    if not proto or proto.lower() not in _SCHEMES:
        return None
    kind = WS_SCHEMES if scheme in ("ws", "wss") else _HTTP_SCHEMES
    return kind.get(proto.lower(), proto.lower())


def forwarded_host(host: str | None) -> str | None:
    """``host`` when it is a whole, well-formed host value (``name[:port]``, ``[v6][:port]``); None otherwise.

    Example::

        >>> forwarded_host("api.example.com:8443"), forwarded_host("evil.com/path")
        ('api.example.com:8443', None)
    """
    if host and len(host) <= _MAX_HOST_LENGTH and _HOST_RE.fullmatch(host):
        return host
    return None


def forwarded_request(
    scheme: str, host: str | None, proto: str | None, fhost: str | None
) -> tuple[str, str | None, bool]:
    """(scheme, host, whether either was forwarded) of a request after a trusted proxy's ``proto`` and ``fhost``.

    Each is applied on its own, only when it passes its check (:func:`forwarded_scheme`, :func:`forwarded_host`).

    Example::

        >>> forwarded_request("http", "internal:8000", "https", None)
        ('https', 'internal:8000', True)
    """
    new_scheme = forwarded_scheme(scheme, proto)
    new_host = forwarded_host(fhost)
    return new_scheme or scheme, new_host or host, new_scheme is not None or new_host is not None
