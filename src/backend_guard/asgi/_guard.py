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
        from .. import asgi as shells

        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        self.app: ASGIApp = parts.wrap(app, shells)
        self.settings = parts.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
