"""``Guard``: the whole WSGI stack in the documented order, from one settings object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._http import StartResponse, WSGIApp
from .._stack import StackParts
from ..config import GuardSettings

if TYPE_CHECKING:
    from ..storage import Store


class Guard:
    """Wrap a WSGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Example::

        from backend_guard.wsgi import Guard

        app.wsgi_app = Guard(app.wsgi_app, bg.GuardSettings(rate_limit={"default_limits": "100/minute"}))
    """

    def __init__(
        self,
        app: WSGIApp,
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
        inner: Any = app
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
        self.app: WSGIApp = inner
        self.settings = parts.settings

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.app(environ, start_response)
