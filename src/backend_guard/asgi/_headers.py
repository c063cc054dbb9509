"""Pure ASGI shell for :class:`~backend_guard.headers.SecureHeaders`: only ``http.response.start`` is touched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._check import check_instance, optional
from .._http import ASGIApp, Scope, get_header, route_path
from ..clientip import ClientIP
from ..headers import NONCE_KEY, OVERRIDE_KEY, SecureHeaders
from ._layer_shell import LayerMiddleware

__all__ = ["SecureHeadersMiddleware"]

_SECURE_SCHEMES = frozenset({"https", "wss"})
_NO_STATE: dict[str, Any] = {}  # read only: a scope without a state holds no nonce and no override


def _plain_variants(policy: SecureHeaders) -> tuple[tuple[tuple[bytes, bytes], ...], ...] | None:
    """What ``policy`` adds without a nonce, by 2 * kind + secure; None when it depends on the path."""
    if policy.depends_on_path:
        return None
    return tuple(
        tuple(policy.added_raw(secure=secure, path="/", kind=kind))
        for kind in (SecureHeaders.OTHER, SecureHeaders.DOCUMENT, SecureHeaders.NOT_MODIFIED)
        for secure in (False, True)
    )


class SecureHeadersMiddleware(LayerMiddleware):
    """Add security headers to every HTTP response (200s, 404s, 405s, 429s and 500s from inner layers alike).

    ``policy`` defaults to ``SecureHeaders()`` (the ``"api"`` preset). ``client_ip`` decides whether a
    request came over HTTPS behind your proxies (``X-Forwarded-Proto`` from a trusted peer); without it the
    server's scheme is used. The response's nonce (made lazily by :func:`~backend_guard.csp_nonce`) and a
    per-route override (``scope["state"]["backend_guard.secure_headers"]``) are read when the response starts.

    Example::

        app.add_middleware(SecureHeadersMiddleware, policy=bg.SecureHeaders(preset="web"))
    """

    reads_content_type = True

    def __init__(self, app: ASGIApp, policy: SecureHeaders | None = None, client_ip: ClientIP | None = None) -> None:
        self.app = app
        optional(check_instance, "policy", policy, SecureHeaders)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        self.policy = policy if policy is not None else SecureHeaders()
        self.client_ip = client_ip if client_ip is not None and client_ip.enabled else None
        policy = self.policy
        self.touches = frozenset(n.encode("latin-1") for n in (*policy.header_names, *policy.removed))
        # What appended returns without a nonce, by (the kind of response, is it HTTPS?) as 2 * kind + secure
        # (kinds: SecureHeaders.kind_raw), when the headers never depend on the path (no no-store paths):
        # computed once.
        self._plain = _plain_variants(policy)
        self._plain_policy = policy
        self._scheme_matters = policy.needs_scheme
        # Without proxies the request step only makes the scope's state: a Guard (which makes it first) skips it.
        self.request_context = self.client_ip is None

    def _secure(self, scope: Scope) -> bool:
        if self.client_ip is not None:
            return self.client_ip.resolve_scope(scope).scheme in _SECURE_SCHEMES
        return scope.get("scheme") in _SECURE_SCHEMES

    def on_request(self, scope: Scope) -> Scope:
        """Rewrite the scope with the resolved client (when behind proxies); the context: the scope."""
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        if "state" not in scope:
            # made now so that a nonce or override set deeper in the stack lands where we look for it
            scope["state"] = {}
        return scope

    def on_response_start(
        self, context: Scope, status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The response's header list with this request's security headers merged in."""
        scope = context
        state: dict[str, Any] = scope.get("state") or _NO_STATE
        policy = state.get(OVERRIDE_KEY) or self.policy
        if not isinstance(policy, SecureHeaders):
            policy = self.policy
        return policy.merge_raw(
            headers,
            secure=policy.needs_scheme and self._secure(scope),
            path=route_path(scope) if policy.depends_on_path else "/",
            nonce=state.get(NONCE_KEY),
            replace=policy is not self.policy,
            status=status,
        )

    def appended(
        self, context: Scope, status: int, headers: Sequence[tuple[bytes, bytes]]
    ) -> Sequence[tuple[bytes, bytes]] | None:
        """The headers :meth:`on_response_start` adds to a response holding none of the names the policy
        touches; None under a route's own policy (which replaces the app's headers)."""
        return self.appended_by_type(context, status, get_header(headers, b"content-type"))

    def appended_by_type(
        self, context: Scope, status: int, content_type: bytes | None
    ) -> Sequence[tuple[bytes, bytes]] | None:
        """:meth:`appended` for a response whose first Content-Type value is ``content_type`` (None: none)."""
        state: dict[str, Any] = context.get("state") or _NO_STATE
        policy = self.policy
        if OVERRIDE_KEY in state or policy is not self._plain_policy:
            return None
        kind = policy.response_kind_raw(status, content_type)  # the policy's one classification
        # The scheme matters to the plain policy only when it sends HSTS on HTTPS alone (decided once).
        secure = self._scheme_matters and (
            context.get("scheme") in _SECURE_SCHEMES if self.client_ip is None else self._secure(context)
        )
        nonce = state.get(NONCE_KEY)
        if nonce is None and self._plain is not None:
            return self._plain[2 * kind + secure]
        return policy.added_raw(
            secure=secure, path=route_path(context) if policy.depends_on_path else "/", nonce=nonce, kind=kind
        )
