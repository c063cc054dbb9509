"""The WSGI shell of :class:`~backend_guard.clientip.ClientIP`: resolve the client once, rewrite the environ."""

from __future__ import annotations

from typing import Any

from .._check import check_instance
from .._http import WSGIApp
from ..clientip import ClientIP
from ._layer_shell import LayerMiddleware

__all__ = ["ProxyHeadersMiddleware"]


class ProxyHeadersMiddleware(LayerMiddleware):
    """Resolve the client address, scheme and host once through trusted proxies, for everything inside.

    Like werkzeug's ProxyFix: ``REMOTE_ADDR``, ``wsgi.url_scheme`` and ``HTTP_HOST`` become the resolved values
    (the originals stay under ``environ[backend_guard.clientip.ORIGINAL_KEY]``), and the
    :class:`~backend_guard.clientip.ResolvedClient` is recorded in the environ, so every inner layer, route
    decorator and the framework's own ``request.remote_addr`` / ``request.META["REMOTE_ADDR"]`` /
    ``request.is_secure()`` agree, and no one applies forwarding headers a second time. ``Guard``, the Flask
    extension and Django's ``GuardMiddleware`` put it outermost when ``trusted_proxies`` is set. Forwarding
    headers from a peer that is not a trusted proxy are ignored.

    Example::

        app.wsgi_app = ProxyHeadersMiddleware(app.wsgi_app, bg.ClientIP(["10.0.0.0/8"]))
    """

    touches: frozenset[str] = frozenset()  # no response header

    def __init__(self, app: WSGIApp, client_ip: ClientIP) -> None:
        self.app = app
        self.client_ip = check_instance("client_ip", client_ip, ClientIP)

    def on_request(self, environ: dict[str, Any]) -> None:
        """Rewrite the environ with the resolved client; nothing to do on the response."""
        self.client_ip.apply_environ(environ)
