"""The ASGI shells of the ``Host`` allowlist and of the HTTPS redirect: ask the policy, answer early.

All decisions live in :mod:`backend_guard.hosts`; these shells only translate. An unknown ``Host`` gets a 400
problem document (``unknown-host``; WebSocket handshakes are refused before ``websocket.accept``); a plain-HTTP
request gets its redirect (308 for unsafe methods, 301 or 308 for ``GET``/``HEAD``, an empty body). Both read the
scheme and host as the ProxyHeaders layer resolved them (or ``client_ip`` here, when one runs alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._check import check_instance, optional
from .._http import ASGIApp, Receive, Scope, Send, route_path
from .._layer import Answer
from .._shell_browser import host_refused, https_redirect_policy, trusted_hosts_policy, unknown_host
from ..clientip import ClientIP
from ..errors import ErrorPolicy
from ..hosts import HTTPSRedirect, Redirect, TrustedHosts
from ._layer_shell import LayerMiddleware, refuse_asgi

__all__ = ["HTTPSRedirectMiddleware", "TrustedHostMiddleware"]


def _host_values(scope: Scope) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == b"host"]


def _refusing_unknown_host(policy: ErrorPolicy | None) -> ASGIApp:
    """The app answering a request for an unknown host (400) under ``policy``."""

    async def refuse_unknown_host(scope: Scope, receive: Receive, send: Send) -> None:
        host_refused(_host_values(scope))
        await refuse_asgi(scope, send, unknown_host(), (), policy)

    return refuse_unknown_host


class TrustedHostMiddleware(LayerMiddleware):
    """Pure ASGI middleware answering 400 problem+json (``unknown-host``) to a request whose ``Host`` is not
    allowed by a :class:`~backend_guard.TrustedHosts` (several ``Host`` fields, or none, are refused too).

    Acts on WebSocket handshakes as well (refused before ``websocket.accept``). ``policy`` may also be the list
    of hosts. ``errors``: the :class:`~backend_guard.errors.ErrorPolicy` the 400 is rendered with (default:
    problem documents; a stack built from settings passes its own).

    Example::

        app = TrustedHostMiddleware(app, policy=bg.TrustedHosts(["example.com", "*.example.com"]))
        # Starlette / FastAPI:
        app.add_middleware(TrustedHostMiddleware, policy=bg.TrustedHosts(["example.com"]))
    """

    scope_types = frozenset({"http", "websocket"})
    touches: frozenset[bytes] = frozenset()  # no response header

    def __init__(
        self, app: ASGIApp, policy: Any, *, client_ip: ClientIP | None = None, errors: ErrorPolicy | None = None
    ) -> None:
        self.app = app
        self.policy = trusted_hosts_policy(policy)
        self.client_ip = optional(check_instance, "client_ip", client_ip, ClientIP)
        self._refusal = Answer(_refusing_unknown_host(optional(check_instance, "errors", errors, ErrorPolicy)))

    def on_request(self, scope: Scope) -> Answer[ASGIApp] | None:
        """None for an allowed host; an :class:`Answer` refusing the request (400) otherwise."""
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        if self.policy.allows(_host_values(scope)):
            return None
        return self._refusal


class HTTPSRedirectMiddleware(LayerMiddleware):
    """Pure ASGI middleware redirecting plain-HTTP requests to HTTPS with an
    :class:`~backend_guard.HTTPSRedirect`: 308 for unsafe methods, ``safe_status`` (301 or 308) for ``GET`` and
    ``HEAD``; the ``Location`` keeps the path and query; an empty body.

    ``exempt_paths`` are not redirected (``"/health"`` exactly, ``"/internal/"`` everything under it: a load
    balancer's plain-HTTP health check). ``trusted_hosts``: never redirect to a host it refuses. Or pass a
    built ``policy=``. The scheme is the resolved one: behind a proxy that terminates TLS, configure it as a
    trusted proxy, or every request looks plain and is redirected again.

    Example::

        app = HTTPSRedirectMiddleware(app, exempt_paths=("/health",))
        # Starlette / FastAPI:
        app.add_middleware(HTTPSRedirectMiddleware, exempt_paths=("/health",), safe_status=308)
    """

    touches: frozenset[bytes] = frozenset()  # no response header

    def __init__(
        self,
        app: ASGIApp,
        exempt_paths: Iterable[str] = (),
        *,
        safe_status: int = 301,
        trusted_hosts: TrustedHosts | None = None,
        https_port: int | None = None,
        policy: HTTPSRedirect | None = None,
        client_ip: ClientIP | None = None,
    ) -> None:
        self.app = app
        options = {"safe_status": safe_status, "trusted_hosts": trusted_hosts, "https_port": https_port}
        self.policy = https_redirect_policy(policy, exempt_paths, options)
        self.client_ip = optional(check_instance, "client_ip", client_ip, ClientIP)

    def on_request(self, scope: Scope) -> Answer[ASGIApp] | None:
        """None when the request goes on; an :class:`Answer` sending the redirect otherwise."""
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        if scope.get("scheme", "http") != "http":
            return None  # the common case: already HTTPS
        host = _host_values(scope)
        found = self.policy.redirect(
            scope["method"],
            scheme="http",
            host=host[0] if len(host) == 1 else None,
            path=_request_path(scope),
            query=scope.get("query_string", b""),
            route=route_path(scope) if scope.get("root_path") else None,
        )
        return None if found is None else Answer(_redirecting(found))


def _request_path(scope: Scope) -> str:
    """The path as received (``raw_path``, still percent-encoded), else the decoded ``path``.

    ``raw_path`` holds no query string by the ASGI spec, but some clients put it there (Starlette's TestClient
    before 0.38): the query is ``scope["query_string"]``'s, so what follows a ``?`` here is dropped.
    """
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes):
        return raw_path.partition(b"?")[0].decode("latin-1")
    return str(scope["path"])


def _redirecting(redirect: Redirect) -> ASGIApp:
    headers = [(b"location", redirect.location.encode("latin-1")), (b"content-length", b"0")]

    async def send_redirect(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": redirect.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return send_redirect
