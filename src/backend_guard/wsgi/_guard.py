"""``Guard``: the whole WSGI stack in the documented order, from one settings object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._check import check_instance, optional
from .._http import StartResponse, WSGIApp
from .._stack import StackParts
from ..config import GuardSettings
from . import _shells as shells

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
        optional(check_instance, "parts", parts, StackParts)
        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        self.app: WSGIApp = parts.wrap(app, shells)
        self.settings = parts.settings

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.app(environ, start_response)
