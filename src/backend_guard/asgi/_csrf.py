"""The ASGI shell of cross-origin request protection: read the browser's headers, ask the policy, refuse early.

All decisions live in :mod:`backend_guard.csrf`; this shell only translates. An unsafe request a browser sends
from another origin gets a 403 problem document (``cross-origin-request``) before it reaches the app; a
WebSocket handshake from another origin is refused before ``websocket.accept`` (cross-site WebSocket
hijacking): with the server's WebSocket denial response (a 403 problem document) when it offers that extension,
else with ``websocket.close`` (the server answers the handshake with a 403).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._check import check_instance, optional
from .._http import ASGIApp, Scope, route_path
from .._layer import Answer
from .._shell_browser import VIEW_KEY, ExemptPaths, cross_origin_policy, refusal
from ..clientip import ClientIP
from ..csrf import SAFE_METHODS, CrossOriginDecision, is_csrf_exempt
from ..errors import ErrorPolicy
from ..integrations._route_views import find_starlette_app, starlette_endpoint
from ._layer_shell import LayerMiddleware, refusing

__all__ = ["CrossOriginProtectionMiddleware", "browser_headers"]


def browser_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(the ``Sec-Fetch-Site`` values, the ``Origin`` values, the ``Host`` values) of ASGI header pairs, one
    item per header field.

    Example::

        >>> browser_headers([(b"origin", b"https://a.example"), (b"host", b"a.example")])
        ([], [b'https://a.example'], [b'a.example'])
    """
    site: list[bytes] = []
    origin: list[bytes] = []
    host: list[bytes] = []
    for name, value in headers:
        if name == b"sec-fetch-site":
            site.append(value)
        elif name == b"origin":
            origin.append(value)
        elif name == b"host":
            host.append(value)
    return site, origin, host


def _one_host(values: list[bytes]) -> str:
    """The single ``Host`` value as text; "" for none or several (the policy then cannot form the origin)."""
    return values[0].decode("latin-1") if len(values) == 1 else ""


class CrossOriginProtectionMiddleware(LayerMiddleware):
    """Pure ASGI middleware applying a :class:`~backend_guard.CrossOriginProtection` (CSRF without tokens).

    Unsafe requests (and WebSocket handshakes) a browser sends from another origin are refused with a 403
    problem document, code ``cross-origin-request``; safe methods and requests without browser headers pass.
    The request's own origin is its scheme and ``Host`` as the ProxyHeaders layer resolved them (or
    ``client_ip`` here, when the middleware runs alone behind proxies).

    Exemptions (webhooks that authenticate their sender): ``exempt_paths`` (``"/hooks/stripe"`` exactly,
    ``"/hooks/"`` everything under it), and any Starlette/FastAPI endpoint marked with
    :func:`~backend_guard.csrf.csrf_exempt`: the middleware runs before routing, so when it is about to refuse
    it matches the app's routes itself (the app of ``scope["app"]``, or the one it wraps) and lets a marked
    endpoint's requests through. Another framework can put a resolver ``(scope) -> view`` in the scope under
    ``"backend_guard.view"``.

    Example::

        app = CrossOriginProtectionMiddleware(app, policy=bg.CrossOriginProtection())
        # Starlette / FastAPI:
        app.add_middleware(CrossOriginProtectionMiddleware, policy=bg.CrossOriginProtection(),
                           exempt_paths=("/hooks/",))
    """

    scope_types = frozenset({"http", "websocket"})
    touches: frozenset[bytes] = frozenset()  # no response header

    def __init__(
        self,
        app: ASGIApp,
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

    def on_request(self, scope: Scope) -> Answer[ASGIApp] | None:
        """None when the request goes on; an :class:`Answer` refusing it (403) otherwise."""
        websocket = scope["type"] == "websocket"
        if not websocket and scope["method"] in SAFE_METHODS:
            return None  # the common case, decided before any header is read
        decision = self.decide(scope, websocket)
        if decision.allowed or self.is_exempt(scope):
            return None
        return Answer(refusing(refusal(decision, websocket=websocket), (), self.errors))

    def decide(self, scope: Scope, websocket: bool) -> CrossOriginDecision:
        """The policy's decision on the request (the scheme and host as resolved)."""
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        site, origin, hosts = browser_headers(scope["headers"])
        scheme = scope.get("scheme") or ("ws" if websocket else "http")
        host = _one_host(hosts)
        if websocket:
            return self.policy.check_websocket(scheme=scheme, host=host, sec_fetch_site=site, origin=origin)
        return self.policy.check(scope["method"], scheme=scheme, host=host, sec_fetch_site=site, origin=origin)

    def is_exempt(self, scope: Scope) -> bool:
        """True when the request's path is exempt, or the view it reaches is marked ``csrf_exempt`` (asked only
        on a refusal: it matches the app's routes)."""
        if self.exempt_paths and self.exempt_paths.is_exempt(route_path(scope)):
            return True
        resolver = scope.get(VIEW_KEY)
        if callable(resolver):
            return is_csrf_exempt(resolver(scope))
        return is_csrf_exempt(starlette_endpoint(find_starlette_app(scope, self.app), scope))
