"""Security response headers: a validated CSP builder, a Permissions-Policy builder, and ``SecureHeaders``.

What must live here (sans-IO): every decision about which header goes on a response. A policy is validated
and compiled once, at construction, into header bytes; per request the shells pass plain values (is the
request secure, its path, this response's nonce if one was used, the headers the app already set) and get
back the merged header list. The ASGI and WSGI middlewares and the route decorator only translate.

The package, one concept per module:

- :mod:`._sources`: the CSP grammar (directives, source expressions, one check per kind of directive);
- :mod:`._csp`: :class:`ContentSecurityPolicy`, validated once, rendered with or without a nonce;
- :mod:`._permissions`: :class:`PermissionsPolicy` and the feature names browsers know;
- :mod:`._nonce`: :func:`csp_nonce` and :func:`peek_nonce`, the per-request nonce and where it is kept;
- :mod:`._presets`: the ``api`` and ``web`` presets as data, and :data:`DISCLOSURE_HEADERS`;
- :mod:`._values`: the check of each keyword and the header value it gives;
- :mod:`._kinds`: the kinds of response (every response, HTML documents, 304s);
- :mod:`._variants`: the profiles and the 24 compiled variants a response is looked up in;
- :mod:`._merge`: merging our headers with the app's;
- :mod:`._policy`: :class:`SecureHeaders`, which ties them together;
- :mod:`._route`: the per-route override behind :meth:`SecureHeaders.route`.

Nonces are lazy: :func:`csp_nonce` makes one (144 bits from ``os.urandom``, the CSPRNG behind :mod:`secrets`)
the first time a request asks for it and keeps it on the request (``scope["state"]``, the WSGI environ,
Django's ``request.csp_nonce``); the middleware adds it to the CSP only for responses that asked. Policies
write the nonce as the placeholder source ``'nonce'`` (:attr:`ContentSecurityPolicy.NONCE`). A response that
used no nonce gets the policy without it; a directive left with ``'strict-dynamic'`` and no nonce or hash then
becomes ``'none'``, which is what a CSP3 browser would enforce anyway, written so that every browser and
checker reads it the same way.
"""

from __future__ import annotations

# Also importable from here as before, outside __all__ (``X as X`` marks a re-export): the CSP value type, the
# CLI's content-type test, the benchmark's nonce maker, the feature registry and the preset marker.
from ._csp import ContentSecurityPolicy
from ._csp import CSPValue as CSPValue
from ._kinds import is_document_type as is_document_type
from ._nonce import ENVIRON_NONCE_KEY, NONCE_KEY, csp_nonce, peek_nonce
from ._nonce import _new_nonce as _new_nonce
from ._permissions import PERMISSIONS_FEATURES as PERMISSIONS_FEATURES
from ._permissions import PermissionsPolicy
from ._policy import SecureHeaders
from ._presets import DISCLOSURE_HEADERS
from ._presets import PRESET as PRESET
from ._route import ENVIRON_OVERRIDE_KEY, OVERRIDE_KEY

__all__ = [
    "DISCLOSURE_HEADERS",
    "ENVIRON_NONCE_KEY",
    "ENVIRON_OVERRIDE_KEY",
    "NONCE_KEY",
    "OVERRIDE_KEY",
    "ContentSecurityPolicy",
    "PermissionsPolicy",
    "SecureHeaders",
    "csp_nonce",
    "peek_nonce",
]
