"""Pure WSGI middlewares: one per part, and ``Guard`` that stacks them in the documented order.

Order (outermost first): ProxyHeaders (with trusted proxies) -> RequestId -> SecureHeaders -> CORS ->
ErrorEnvelope -> TrustedHost -> HTTPSRedirect -> CrossOriginProtection -> RateLimit -> app. Every middleware
takes the wrapped app first and its policy as ``policy`` (the rate limiter as ``limiter``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "Guard",
    "HTTPSRedirectMiddleware",
    "ProxyHeadersMiddleware",
    "RateLimitMiddleware",
    "RequestIdMiddleware",
    "SecureHeadersMiddleware",
    "TrustedHostMiddleware",
]

if TYPE_CHECKING:
    from ._guard import Guard
else:

    def __getattr__(name: str) -> Any:
        """``Guard`` is imported when first read: it loads the settings (pydantic) that the middlewares alone
        do not need."""
        if name == "Guard":
            value = importlib.import_module("._guard", __name__).Guard
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
