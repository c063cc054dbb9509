"""The WSGI shell of cross-origin request protection: read the browser's headers, ask the policy, refuse early.

All decisions live in :mod:`backend_guard.csrf`; this shell only translates. An unsafe request a browser sends
from another origin gets a 403 problem document (``cross-origin-request``) before it reaches the app; a WebSocket
handshake (``Upgrade: websocket``, a ``GET``) is judged as unsafe, as the ASGI shell judges one. A WSGI
server joins repeated header fields with ``","``: two ``Origin`` fields never parse (refused), two different
``Sec-Fetch-Site`` values conflict (refused).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from .._check import check_instance, optional
from .._http import StartResponse, WSGIApp, wsgi_problem
from .._layer import Answer
from .._shell_browser import VIEW_KEY, ExemptPaths, cross_origin_policy, environ_host, refusal
from ..clientip import ClientIP
from ..csrf import SAFE_METHODS, CrossOriginDecision, is_csrf_exempt
from ..errors import ErrorPolicy
from ..exceptions import GuardError
from ..integrations._route_views import find_flask_app, flask_view
from ._layer_shell import LayerMiddleware

__all__ = ["CrossOriginProtectionMiddleware", "refuse_wsgi"]


def _is_handshake(environ: dict[str, Any]) -> bool:
    """True for a WebSocket handshake (``Upgrade: websocket``: flask-sock, simple-websocket, gevent-websocket): a
    ``GET`` a page on any site can send with the user's cookies (cross-site WebSocket hijacking). No page's script
    can set ``Upgrade`` on a plain request."""
    upgrade = environ.get("HTTP_UPGRADE")
    return isinstance(upgrade, str) and "websocket" in upgrade.lower()


def _values(environ: dict[str, Any], key: str) -> tuple[str, ...]:
    value = environ.get(key)
    return (value,) if isinstance(value, str) else ()


class CrossOriginProtectionMiddleware(LayerMiddleware):
    """WSGI middleware applying a :class:`~backend_guard.CrossOriginProtection` (CSRF without tokens).

    Same behaviour as the ASGI middleware of the same name: unsafe requests a browser sends from another origin
    get a 403 problem document (``cross-origin-request``); safe methods and requests without browser headers
    pass; the scheme and ``HTTP_HOST`` are the ones ProxyHeaders resolved (or ``client_ip`` here); without a
    ``Host`` header, the server's ``SERVER_NAME``/``SERVER_PORT``.

    Exemptions: ``exempt_paths``, a Flask view marked with :func:`~backend_guard.csrf.csrf_exempt` (found by
    binding the URL map of the Flask app this middleware wraps, only when it is about to refuse), a Django view
    so marked (``GuardMiddleware`` holds the refusal until ``process_view`` knows the view Django resolved), or
    any framework's resolver ``(environ) -> view`` under ``environ["backend_guard.view"]``.

    Example::

        app.wsgi_app = CrossOriginProtectionMiddleware(app.wsgi_app, policy=bg.CrossOriginProtection())
    """

    touches: frozenset[str] = frozenset()  # no response header

    def __init__(
        self,
        app: WSGIApp,
        policy: Any = None,
        *,
        exempt_paths: Iterable[str] = (),
        client_ip: ClientIP | None = None,
        errors: ErrorPolicy | None = None,
    ) -> None:
        self.app = app
        self.policy = cross_origin_policy(policy)
        self.exempt_paths = ExemptPaths(exempt_paths)
        self.client_ip = optional(check_instance, "client_ip", client_ip, ClientIP)
        #: The policy its 403 is rendered with (None: problem documents); a stack built from settings passes its own.
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)

    def on_request(self, environ: dict[str, Any]) -> Answer[WSGIApp] | None:
        """None when the request goes on; an :class:`Answer` refusing it (403) otherwise."""
        method = environ.get("REQUEST_METHOD", "GET")
        websocket = method in SAFE_METHODS
        if websocket and not _is_handshake(environ):
            return None  # the common case, decided after one header is looked up
        decision = self.decide(environ, method, websocket=websocket)
        if decision.allowed or self.is_exempt(environ):
            return None
        return Answer(partial(self._refuse, decision, websocket))

    def _refuse(
        self, decision: CrossOriginDecision, websocket: bool, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """The 403 of a refused decision, and its ``csrf.refused`` event: when it is answered (Django's
        ``GuardMiddleware`` holds it until ``process_view``, which lifts it for a ``csrf_exempt`` view)."""
        return refuse_wsgi(refusal(decision, websocket=websocket), environ, start_response, policy=self.errors)

    def decide(self, environ: dict[str, Any], method: str, *, websocket: bool = False) -> CrossOriginDecision:
        """The policy's decision on the request (the scheme and host as resolved); a WebSocket handshake is
        judged as an unsafe method."""
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        scheme, host = environ.get("wsgi.url_scheme", "http"), environ_host(environ) or ""
        site, origin = _values(environ, "HTTP_SEC_FETCH_SITE"), _values(environ, "HTTP_ORIGIN")
        if websocket:
            return self.policy.check_websocket(scheme=scheme, host=host, sec_fetch_site=site, origin=origin)
        return self.policy.check(method, scheme=scheme, host=host, sec_fetch_site=site, origin=origin)

    def is_exempt(self, environ: dict[str, Any]) -> bool:
        """True when the path is exempt, or the view the request reaches is marked ``csrf_exempt`` (asked only
        on a refusal)."""
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if self.exempt_paths and self.exempt_paths.is_exempt(path):
            return True
        resolver = environ.get(VIEW_KEY)
        if callable(resolver):
            return is_csrf_exempt(resolver(environ))
        flask_app = find_flask_app(self.app)
        return flask_app is not None and is_csrf_exempt(flask_view(flask_app, environ))


def refuse_wsgi(
    error: GuardError, environ: dict[str, Any], start_response: StartResponse, policy: ErrorPolicy | None = None
) -> Iterable[bytes]:
    """Answer ``error`` as an error document under ``policy`` (default: a problem document).

    Example::

        return refuse_wsgi(CrossOriginRequest("..."), environ, start_response)
    """
    return wsgi_problem(start_response, error, environ=environ, policy=policy)
