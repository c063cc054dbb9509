"""WSGI shell for :class:`~backend_guard.headers.SecureHeaders`: headers merged in ``start_response``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._check import check_instance, optional
from .._http import WSGIApp
from ..clientip import ClientIP
from ..headers import NONCE_KEY, OVERRIDE_KEY, SecureHeaders
from ._layer_shell import LayerMiddleware

__all__ = ["SecureHeadersMiddleware"]

_SECURE_SCHEMES = frozenset({"https", "wss"})


class SecureHeadersMiddleware(LayerMiddleware):
    """Add security headers to every response of a WSGI app (Flask, Django, any WSGI callable).

    ``policy`` defaults to ``SecureHeaders()`` (the ``"api"`` preset); ``client_ip`` decides HTTPS behind
    trusted proxies. The nonce (``environ["backend_guard.csp_nonce"]``) and a per-route override
    (``environ["backend_guard.secure_headers"]``) are read when the app calls ``start_response``.

    Example::

        app.wsgi_app = SecureHeadersMiddleware(app.wsgi_app, policy=bg.SecureHeaders(preset="web"))
    """

    def __init__(self, app: WSGIApp, policy: SecureHeaders | None = None, client_ip: ClientIP | None = None) -> None:
        self.app = app
        optional(check_instance, "policy", policy, SecureHeaders)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        self.policy = policy if policy is not None else SecureHeaders()
        self.client_ip = client_ip if client_ip is not None and client_ip.enabled else None

    def _secure(self, environ: dict[str, Any]) -> bool:
        if self.client_ip is not None:
            return self.client_ip.resolve_environ(environ).scheme in _SECURE_SCHEMES
        return environ.get("wsgi.url_scheme") in _SECURE_SCHEMES

    def on_request(self, environ: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the environ with the resolved client (behind proxies); the context: the environ."""
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        return environ

    def on_response_start(
        self, context: dict[str, Any], status: int, headers: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The response's header list with this request's security headers merged in."""
        environ = context
        override = environ.get(OVERRIDE_KEY)
        policy = override if isinstance(override, SecureHeaders) else self.policy
        path = (environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/")
        return policy.merge_str(
            headers,
            secure=self._secure(environ) if policy.needs_scheme else False,
            path=path,
            nonce=environ.get(NONCE_KEY),
            replace=policy is not self.policy,
            status=status,
        )
