"""The ASGI shell of :class:`~backend_guard.clientip.ClientIP`: resolve the client once, rewrite the scope."""

from __future__ import annotations

from .._check import check_instance
from .._http import ASGIApp, Scope
from ..clientip import ClientIP
from ._layer_shell import LayerMiddleware

__all__ = ["ProxyHeadersMiddleware"]


class ProxyHeadersMiddleware(LayerMiddleware):
    """Resolve the client address, scheme and host once through trusted proxies, for everything inside.

    Like uvicorn's proxy headers middleware: ``scope["client"]``, ``scope["scheme"]`` and the ``host`` header
    become the resolved values (the originals stay under ``scope[backend_guard.clientip.ORIGINAL_KEY]``), and
    the :class:`~backend_guard.clientip.ResolvedClient` is recorded in the scope, so every inner layer, route
    decorator and the framework's own ``request.client.host`` agree, and no one applies forwarding headers a
    second time. ``Guard`` and ``backend_guard.fastapi.install`` put it outermost when ``trusted_proxies``
    is set. Forwarding headers from a peer that is not a trusted proxy are ignored.

    Example::

        app = ProxyHeadersMiddleware(app, bg.ClientIP(["10.0.0.0/8"]))
        # or, in Starlette/FastAPI:  app.add_middleware(ProxyHeadersMiddleware, client_ip=bg.ClientIP([...]))
    """

    scope_types = frozenset({"http", "websocket"})
    touches: frozenset[bytes] = frozenset()  # no response header

    def __init__(self, app: ASGIApp, client_ip: ClientIP) -> None:
        self.app = app
        self.client_ip = check_instance("client_ip", client_ip, ClientIP)

    def on_request(self, scope: Scope) -> None:
        """Rewrite the scope with the resolved client; nothing to do on the response."""
        self.client_ip.apply_scope(scope)
