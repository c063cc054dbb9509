"""Trusted hosts and the HTTPS redirect: plain decisions over a request's ``Host``, scheme and path (sans-IO).

What lives here: :class:`TrustedHosts` (a ``Host`` allowlist of exact names and ``*.example.com`` wildcards,
validated at construction; the shells answer 400 problem+json for any other host) and :class:`HTTPSRedirect`
(whether a plain-HTTP request is redirected, with which status and to which ``Location``). No framework and
no I/O: the ASGI and WSGI shells read the resolved scheme and host, ask, and answer.

Why both live together: a redirect is built from the request's host, which the client chose. Building it from
a host the allowlist refuses would make the redirect an open redirect (and a cache-poisoning tool), so
:class:`HTTPSRedirect` takes the :class:`TrustedHosts` policy and never redirects to a host it refuses.

The package's modules, one concept each (this file only re-exports them): ``_host`` (the grammar of a ``Host``
value and of a configured host), ``_trusted`` (:class:`TrustedHosts`) and ``_redirect`` (:class:`HTTPSRedirect`,
:class:`Redirect`).
"""

from __future__ import annotations

from ._host import HostName, parse_host
from ._redirect import HTTPSRedirect, Redirect
from ._trusted import TrustedHosts

__all__ = ["HTTPSRedirect", "HostName", "Redirect", "TrustedHosts", "parse_host"]
