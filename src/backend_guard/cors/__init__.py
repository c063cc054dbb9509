"""CORS: a policy compiled once, origins compared structurally, and decisions as plain results (sans-IO).

What lives here: parsing origins into ``(scheme, host, port)``, matching them against the configured origins,
subdomain patterns and an optional full-match regex, and deciding what a preflight or an actual response gets.
No framework and no I/O: the ASGI and WSGI middlewares (``backend_guard.asgi``/``backend_guard.wsgi``) only read
headers, ask the policy and write headers back.

Why structural matching: comparing strings with prefixes or loose regexes is how CORS filters get fooled
(``https://example.com.evil.net``, ``https://example.com@evil.net``, ``https://evilexample.com``). An origin
here is parsed by a strict grammar first; anything that is not exactly ``scheme://host[:port]`` is never allowed,
and a match compares the scheme, the host and the port as separate values.

The package's modules, one concept each (this file only re-exports them): ``_origin`` (the origin grammar),
``_sites`` (registrable domains, public suffixes, other registrants' hosts), ``_patterns`` (``*.example.com``),
``_regex`` and ``_regex_samples`` (origin regexes and their reach), ``_settings`` (checks and compiled forms of a
policy's settings), ``_decision`` (:class:`CORSDecision`, raw header pairs), ``_policy`` (:class:`CORSPolicy`)
and ``_route`` (:func:`cors_headers`, :func:`cors_route`).
"""

from __future__ import annotations

# ``__all__`` keeps the package's public names as they were before the split into modules; the ``X as X``
# imports are re-exports (not in ``__all__``) of what the shells, the stack and the tests import from here.
from ._decision import ACTUAL_VARY as ACTUAL_VARY
from ._decision import PNA_VARY as PNA_VARY
from ._decision import PREFLIGHT_VARY as PREFLIGHT_VARY
from ._decision import CORSDecision
from ._decision import RawHeaders as RawHeaders
from ._origin import DEFAULT_PORTS as DEFAULT_PORTS
from ._origin import MAX_ORIGIN_LENGTH as MAX_ORIGIN_LENGTH
from ._origin import Origin, parse_origin
from ._policy import MAX_REQUEST_HEADERS_LENGTH as MAX_REQUEST_HEADERS_LENGTH
from ._policy import SAFELISTED_HEADERS as SAFELISTED_HEADERS
from ._policy import SAFELISTED_METHODS as SAFELISTED_METHODS
from ._policy import CORSPolicy
from ._route import STATE_KEY as STATE_KEY
from ._route import cors_headers, cors_route

__all__ = ["CORSDecision", "CORSPolicy", "Origin", "cors_headers", "cors_route", "parse_origin"]
