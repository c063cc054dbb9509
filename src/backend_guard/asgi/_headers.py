"""Pure ASGI shell for :class:`~backend_guard.headers.SecureHeaders`: only ``http.response.start`` is touched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._check import check_instance, optional
from .._http import ASGIApp, Message, Receive, Scope, Send
from ..clientip import ClientIP
from ..headers import NONCE_KEY, OVERRIDE_KEY, SecureHeaders

__all__ = ["SecureHeadersMiddleware"]

_SECURE_SCHEMES = frozenset({"https", "wss"})


class SecureHeadersMiddleware:
    """Add security headers to every HTTP response (200s, 404s, 405s, 429s and 500s from inner layers alike).

    ``policy`` defaults to ``SecureHeaders()`` (the ``"api"`` preset). ``client_ip`` decides whether a
    request came over HTTPS behind your proxies (``X-Forwarded-Proto`` from a trusted peer); without it the
    server's scheme is used. The response's nonce (made lazily by :func:`~backend_guard.csp_nonce`) and a
    per-route override (``scope["state"]["backend_guard.secure_headers"]``) are read when the response starts.

    Example::

        app.add_middleware(SecureHeadersMiddleware, policy=bg.SecureHeaders(preset="web"))
    """

    def __init__(self, app: ASGIApp, policy: SecureHeaders | None = None, client_ip: ClientIP | None = None) -> None:
        self.app = app
        optional(check_instance, "policy", policy, SecureHeaders)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        self.policy = policy if policy is not None else SecureHeaders()
        self.client_ip = client_ip if client_ip is not None and client_ip.enabled else None
        # What _added returns without a nonce, by (the kind of response, is it HTTPS?) as 2 * kind + secure
        # (kinds: SecureHeaders.kind_raw), when the headers never depend on the path (no no-store paths):
        # computed once.
        self._plain: tuple[tuple[tuple[bytes, bytes], ...], ...] | None = None
        self._plain_policy = self.policy
        if not self.policy.depends_on_path:
            self._plain = tuple(
                tuple(self.policy.added_raw(secure=secure, path="/", kind=kind))
                for kind in (SecureHeaders.OTHER, SecureHeaders.DOCUMENT, SecureHeaders.NOT_MODIFIED)
                for secure in (False, True)
            )

    def _secure(self, scope: Scope) -> bool:
        if self.client_ip is not None:
            return self.client_ip.resolve_scope(scope).scheme in _SECURE_SCHEMES
        return scope.get("scheme") in _SECURE_SCHEMES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            # made now so that a nonce or override set deeper in the stack lands where we look for it
            state = scope["state"] = {}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._apply(state, scope, message.get("headers", ()), message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _apply(
        self, state: dict[str, Any], scope: Scope, headers: Iterable[tuple[bytes, bytes]], status: int
    ) -> list[tuple[bytes, bytes]]:
        """The response's header list with this request's security headers merged in."""
        policy = state.get(OVERRIDE_KEY) or self.policy
        if not isinstance(policy, SecureHeaders):
            policy = self.policy
        return policy.merge_raw(
            headers,
            secure=policy.needs_scheme and self._secure(scope),
            path=scope.get("path", "/"),
            nonce=state.get(NONCE_KEY),
            replace=policy is not self.policy,
            status=status,
        )

    def _added(self, state: dict[str, Any], scope: Scope, kind: int) -> Sequence[tuple[bytes, bytes]]:
        """The headers :meth:`_apply` adds to a response of this ``kind`` (``policy.kind_raw``) when its headers
        hold none of the names the policy touches (its ``header_names`` and ``removed``) and no route override
        is set: a fused Guard's fast path."""
        policy = self.policy
        secure = policy.needs_scheme and self._secure(scope)
        nonce = state.get(NONCE_KEY)
        if nonce is None and self._plain is not None and policy is self._plain_policy:
            return self._plain[2 * kind + secure]
        return policy.added_raw(secure=secure, path=scope.get("path", "/"), nonce=nonce, kind=kind)
