"""The ASGI middlewares that :meth:`~backend_guard._stack.StackParts.wrap` stacks, as one namespace.

``Guard`` hands this module to ``wrap`` (rather than the ``backend_guard.asgi`` package, which imports
``Guard`` itself), so the package's modules import each other in one direction only.
"""

from __future__ import annotations

from ._cors import CORSMiddleware
from ._csrf import CrossOriginProtectionMiddleware
from ._errors import ErrorEnvelopeMiddleware
from ._headers import SecureHeadersMiddleware
from ._hosts import HTTPSRedirectMiddleware, TrustedHostMiddleware
from ._proxy import ProxyHeadersMiddleware
from ._ratelimit import RateLimitMiddleware
from ._request_id import RequestIdMiddleware

__all__ = [
    "CORSMiddleware",
    "CrossOriginProtectionMiddleware",
    "ErrorEnvelopeMiddleware",
    "HTTPSRedirectMiddleware",
    "ProxyHeadersMiddleware",
    "RateLimitMiddleware",
    "RequestIdMiddleware",
    "SecureHeadersMiddleware",
    "TrustedHostMiddleware",
]
