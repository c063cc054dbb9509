"""``Guard``: the whole ASGI stack in the documented order, from one settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._http import ASGIApp, Receive, Scope, Send
from .._stack import StackParts
from ..config import GuardSettings

if TYPE_CHECKING:
    from ..storage import Store


class Guard:
    """Wrap an ASGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Each part can be switched off or configured in ``settings``; the compiled parts are on ``.parts``
    (``parts.limiter``, ``parts.store``, ``parts.lockout()``, ``parts.tokens()``...).

    Example::

        from backend_guard.asgi import Guard

        app = Guard(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
        # or, in Starlette/FastAPI:  app.add_middleware(Guard, settings=settings)
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GuardSettings | None = None,
        *,
        store: Store | None = None,
        parts: StackParts | None = None,
    ) -> None:
        from ._cors import CORSMiddleware
        from ._errors import ErrorEnvelopeMiddleware
        from ._headers import SecureHeadersMiddleware
        from ._ratelimit import RateLimitMiddleware
        from ._request_id import RequestIdMiddleware

        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        inner: ASGIApp = app
        if parts.limiter is not None:
            inner = RateLimitMiddleware(inner, **parts.rate_limit_options())
        if parts.errors is not None:
            inner = ErrorEnvelopeMiddleware(inner, policy=parts.errors)
        if parts.cors is not None:
            inner = CORSMiddleware(inner, policy=parts.cors)
        if parts.secure_headers is not None:
            inner = SecureHeadersMiddleware(inner, policy=parts.secure_headers, client_ip=parts.client_ip)
        if parts.request_id is not None:
            inner = RequestIdMiddleware(inner, **parts.request_id)
        self.app = inner
        self.settings = parts.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
