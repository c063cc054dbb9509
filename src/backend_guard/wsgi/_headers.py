"""WSGI shell for :class:`~backend_guard.headers.SecureHeaders`: headers merged in ``start_response``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._check import check_instance, optional
from .._http import WSGIApp
from ..clientip import ClientIP
from ..headers import NONCE_KEY, OVERRIDE_KEY, SecureHeaders
from ..headers._kinds import content_type_of
from ._layer_shell import LayerMiddleware

__all__ = ["SecureHeadersMiddleware"]

_SECURE_SCHEMES = frozenset({"https", "wss"})
#: A response of each kind, as ``headers_for`` reads it: (status, Content-Type), in the order of the kinds.
_KIND_SAMPLES = {
    SecureHeaders.OTHER: (200, None),
    SecureHeaders.DOCUMENT: (200, "text/html"),
    SecureHeaders.NOT_MODIFIED: (304, None),
}


def _plain_variants(policy: SecureHeaders) -> dict[tuple[int, bool], tuple[tuple[str, str], ...]] | None:
    """What ``policy`` adds without a nonce to a response holding none of its names, by (kind, secure); None
    when it depends on the path."""
    if policy.depends_on_path:
        return None
    return {
        (kind, secure): tuple(policy.headers_for(secure=secure, content_type=ctype, status=status))
        for kind, (status, ctype) in _KIND_SAMPLES.items()
        for secure in (False, True)
    }


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
        policy = self.policy
        self.touches = frozenset(n.lower() for n in (*policy.header_names, *policy.removed))
        # What appended returns without a nonce, by (kind, secure), when the headers never depend on the path:
        # computed once.
        self._plain = _plain_variants(policy)
        self._plain_policy = policy

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

    def appended(
        self, context: dict[str, Any], status: int, headers: Sequence[tuple[str, str]]
    ) -> Sequence[tuple[str, str]] | None:
        """The headers :meth:`on_response_start` adds to a response holding none of the names the policy
        touches (computed once per kind of response); None under a route's own policy or with a nonce."""
        environ = context
        policy = self.policy
        plain = self._plain
        if plain is None or policy is not self._plain_policy or OVERRIDE_KEY in environ or NONCE_KEY in environ:
            return None
        kind = policy.response_kind_str(status, content_type_of(headers) if policy.splits_documents else None)
        return plain[kind, self._secure(environ) if policy.needs_scheme else False]
