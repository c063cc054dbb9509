"""Pure WSGI middlewares: one per part, and ``Guard`` that stacks them in the documented order.

Order (outermost first): ProxyHeaders (with trusted proxies) -> RequestId -> SecureHeaders -> CORS ->
ErrorEnvelope -> TrustedHost -> HTTPSRedirect -> CrossOriginProtection -> RateLimit -> app. Every middleware
takes the wrapped app first and its policy as ``policy`` (the rate limiter as ``limiter``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    # ``Guard`` is imported when first read: it loads the settings (pydantic) the middlewares alone do not need.
    from .._lazy import lazy_names

    __getattr__, __dir__ = lazy_names(__name__, globals(), {"Guard": ("._guard", "Guard")})
