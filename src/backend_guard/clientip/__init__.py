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

The package's modules, one concept each (this file only re-exports them): ``_address`` (addresses as text, the
per-address bucket), ``_forwarding`` (forwarding header values, bounded), ``_requests`` (:class:`ResolvedClient`,
reading and rewriting a scope or an environ) and ``_resolver`` (:class:`ClientIP`: whom to believe, and the walk).
"""

from __future__ import annotations

from ._address import address_bucket, normalize_address
from ._forwarding import FIELDS
from ._forwarding import MAX_HEADER_LENGTH as MAX_HEADER_LENGTH
from ._forwarding import MAX_HOPS as MAX_HOPS
from ._requests import ORIGINAL_KEY, RESOLVED_KEY, ResolvedClient
from ._resolver import ClientIP

__all__ = [
    "FIELDS",
    "ORIGINAL_KEY",
    "RESOLVED_KEY",
    "ClientIP",
    "ResolvedClient",
    "address_bucket",
    "normalize_address",
]
