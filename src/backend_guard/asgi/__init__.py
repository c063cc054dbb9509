"""Pure ASGI middlewares: one per part, and ``Guard`` that stacks them in the documented order.

Order (outermost first): RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit -> app.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CORSMiddleware": "._cors",
    "ErrorEnvelopeMiddleware": "._errors",
    "Guard": "._guard",
    "RateLimitMiddleware": "._ratelimit",
    "RequestIdMiddleware": "._request_id",
    "SecureHeadersMiddleware": "._headers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
