"""The parts of the documented stack, built once from :class:`~backend_guard.config.GuardSettings`.

Both ``asgi.Guard`` and ``wsgi.Guard`` (and the framework installers) take their policies from here, so the
order and the wiring are written once: the shells only wrap.

Order (outermost first): ProxyHeaders (when ``trusted_proxies`` is set) -> RequestId ->
SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit -> app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._check import check_instance, optional
from .config import GuardSettings
from .storage import Store

if TYPE_CHECKING:
    from .clientip import ClientIP
    from .cors import CORSPolicy
    from .errors import ErrorPolicy
    from .headers import SecureHeaders
    from .lockout import Lockout
    from .passwords import PasswordHasher
    from .ratelimit import RateLimiter, RateLimitRule
    from .tokens import TokenManager


@dataclass
class StackParts:
    """Every compiled policy of the stack, plus the shared store and client-address resolver.

    ``None`` marks a part that is switched off.

    Example::

        parts = StackParts.build(GuardSettings(cors={"allow_origins": ["https://a.example"]}))
        parts.cors.is_allowed_origin("https://a.example")   # True
    """

    settings: GuardSettings
    client_ip: ClientIP
    store: Store
    request_id: dict[str, Any] | None
    secure_headers: SecureHeaders | None
    cors: CORSPolicy | None
    errors: ErrorPolicy | None
    limiter: RateLimiter | None
    rules: list[RateLimitRule]

    @classmethod
    def build(cls, settings: GuardSettings | None = None, *, store: Store | None = None) -> StackParts:
        """Compile every enabled part (one store object shared by all of them)."""
        settings = optional(check_instance, "settings", settings, GuardSettings) or GuardSettings()
        optional(check_instance, "store", store, Store)
        client_ip = settings.client_ip()
        shared = store if store is not None else settings.open_store()
        rl = settings.rate_limit
        return cls(
            settings=settings,
            client_ip=client_ip,
            store=shared,
            request_id=(
                {"header": settings.request_id.header, "trust_incoming": settings.request_id.trust_incoming}
                if settings.request_id.enabled
                else None
            ),
            secure_headers=settings.secure_headers.build() if settings.secure_headers.enabled else None,
            cors=settings.cors.build() if settings.cors.active else None,
            errors=settings.errors.build() if settings.errors.enabled else None,
            limiter=rl.build_limiter(shared, client_ip) if rl.active else None,
            rules=rl.build_rules() if rl.active else [],
        )

    def wrap(self, app: Any, shells: Any) -> Any:
        """Wrap ``app`` in the enabled shells of ``shells`` (the ``asgi`` or ``wsgi`` package), in stack order.

        Example::

            from backend_guard import asgi
            app = parts.wrap(app, asgi)
        """
        inner = app
        if self.limiter is not None:
            inner = shells.RateLimitMiddleware(inner, **self.rate_limit_options())
        if self.errors is not None:
            inner = shells.ErrorEnvelopeMiddleware(inner, policy=self.errors)
        if self.cors is not None:
            inner = shells.CORSMiddleware(inner, policy=self.cors)
        if self.secure_headers is not None:
            inner = shells.SecureHeadersMiddleware(inner, policy=self.secure_headers, client_ip=self.client_ip)
        if self.request_id is not None:
            inner = shells.RequestIdMiddleware(inner, **self.request_id)
        if self.client_ip.enabled:  # outermost: every layer inside uses the one resolved client
            inner = shells.ProxyHeadersMiddleware(inner, client_ip=self.client_ip)
        return inner

    def rate_limit_options(self) -> dict[str, Any]:
        """Keyword arguments for a RateLimitMiddleware (ASGI or WSGI)."""
        rl = self.settings.rate_limit
        return {
            "limiter": self.limiter,
            "rules": self.rules,
            "limits": rl.default_limits,
            "key": rl.key,
            "client_ip": self.client_ip,
            "ipv6_prefix": rl.ipv6_prefix,
        }

    def lockout(self) -> Lockout:
        """A :class:`~backend_guard.lockout.Lockout` on the shared store, from the settings."""
        return self.settings.lockout.build(self.store, self.client_ip)

    def tokens(self) -> TokenManager:
        """A :class:`~backend_guard.tokens.TokenManager` on the shared store (needs ``tokens.key``)."""
        return self.settings.tokens.build(self.store)

    def hasher(self) -> PasswordHasher:
        """A :class:`~backend_guard.passwords.PasswordHasher` from the settings."""
        return self.settings.passwords.build()
