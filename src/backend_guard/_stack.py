"""The parts of the documented stack, built once from :class:`~backend_guard.config.GuardSettings`.

Both ``asgi.Guard`` and ``wsgi.Guard`` (and the framework installers) take their policies from here, so the
order and the wiring are written once: the shells only wrap.

Order (outermost first): ProxyHeaders (when ``trusted_proxies`` is set) -> RequestId ->
SecureHeaders -> CORS -> ErrorEnvelope -> TrustedHost -> HTTPSRedirect -> CrossOriginProtection -> RateLimit
-> app. The browser-session layers sit inside the envelope, so their refusals carry every header.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._check import check_instance, optional
from .config import GuardSettings
from .cors import CORSPolicy
from .exceptions import ConfigurationError
from .storage import Store

if TYPE_CHECKING:
    from .clientip import ClientIP
    from .csrf import CrossOriginProtection
    from .errors import ErrorPolicy
    from .headers import SecureHeaders
    from .hosts import HTTPSRedirect, TrustedHosts
    from .lockout import Lockout
    from .passwords import PasswordHasher
    from .ratelimit import RateLimiter, RateLimitRule
    from .tokens import TokenCookies, TokenManager

_T = TypeVar("_T")


@dataclass
class StackParts:
    """Every compiled policy of the stack, plus the shared store and client-address resolver.

    ``None`` marks a part that is switched off. ``limiter`` is always a
    :class:`~backend_guard.ratelimit.RateLimiter` on the shared store (its route decorators work with no
    ``rate_limit`` limits configured); ``rate_limit`` says whether the RateLimit middleware runs (some
    ``default_limits`` or ``rules``, and not ``enabled=False``). ``lockout()``, ``tokens()`` and
    ``passwords()`` build their part from the settings once and then return that same object, so every view
    shares one lockout's state.

    Example::

        parts = StackParts.build(GuardSettings(cors={"allow_origins": ["https://a.example"]}))
        parts.cors.is_allowed_origin("https://a.example")   # True
        parts.lockout() is parts.lockout()                  # True
    """

    settings: GuardSettings
    client_ip: ClientIP
    store: Store
    request_id: dict[str, Any] | None
    secure_headers: SecureHeaders | None
    cors: CORSPolicy | None
    errors: ErrorPolicy | None
    limiter: RateLimiter
    rules: list[RateLimitRule]
    rate_limit: bool = False
    #: The browser-session layers (None: off): the Host allowlist, the HTTPS redirect, cross-origin protection
    #: (with the paths it never refuses).
    trusted_hosts: TrustedHosts | None = None
    https_redirect: HTTPSRedirect | None = None
    csrf: CrossOriginProtection | None = None
    csrf_exempt_paths: tuple[str, ...] = ()
    _built: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, settings: GuardSettings | None = None, *, store: Store | None = None) -> StackParts:
        """Compile every enabled part (one store object shared by all of them); no settings: the environment's
        (:meth:`GuardSettings.from_env`, the defaults where no ``BACKEND_GUARD_...`` variable is set)."""
        settings = optional(check_instance, "settings", settings, GuardSettings) or GuardSettings.from_env()
        optional(check_instance, "store", store, Store)
        client_ip = settings.client_ip()
        shared = store if store is not None else settings.open_store()
        rl = settings.rate_limit
        errors = settings.errors.build()  # every refusal's policy, the envelope's too (one setting, every part)
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
            errors=errors if settings.errors.enabled else None,
            limiter=rl.build_limiter(shared, client_ip, errors),
            rules=rl.build_rules() if rl.active else [],
            rate_limit=rl.active,
            **_browser_parts(settings),
        )

    def middlewares(self, shells: Any) -> list[tuple[str, Any, dict[str, Any]]]:
        """The enabled shells of ``shells`` (the ``asgi`` or ``wsgi`` package, or any namespace with the six
        middlewares of one protocol) with their keyword arguments, innermost first: (section, class, options).
        The one place the stack's order is written; :meth:`wrap` and ``backend_guard.fastapi.install`` follow it.

        Sections: ``rate_limit``, ``csrf``, ``https_redirect``, ``trusted_hosts``, ``errors``, ``cors``,
        ``secure_headers``, ``request_id``, ``proxy_headers``.

        Example::

            for section, cls, options in parts.middlewares(asgi):
                app.add_middleware(cls, **options)      # Starlette: the one added last is outermost
        """
        found: list[tuple[str, Any, dict[str, Any]]] = []
        if self.rate_limit:
            found.append(("rate_limit", shells.RateLimitMiddleware, self.rate_limit_options()))
        found += self._browser_middlewares(shells)
        if self.errors is not None:
            found.append(("errors", shells.ErrorEnvelopeMiddleware, {"policy": self.errors}))
        if self.cors is not None:
            found.append(("cors", shells.CORSMiddleware, {"policy": self.cors, "errors": self.error_policy()}))
        if self.secure_headers is not None:
            options = {"policy": self.secure_headers, "client_ip": self.client_ip}
            found.append(("secure_headers", shells.SecureHeadersMiddleware, options))
        if self.request_id is not None:
            found.append(("request_id", shells.RequestIdMiddleware, dict(self.request_id)))
        if self.client_ip.enabled:  # outermost: every layer inside uses the one resolved client
            found.append(("proxy_headers", shells.ProxyHeadersMiddleware, {"client_ip": self.client_ip}))
        return found

    def _browser_middlewares(self, shells: Any) -> list[tuple[str, Any, dict[str, Any]]]:
        """The enabled browser-session shells, innermost first: CrossOriginProtection, HTTPSRedirect, TrustedHost."""
        found: list[tuple[str, Any, dict[str, Any]]] = []
        errors = self.error_policy()
        if self.csrf is not None:
            options = {"policy": self.csrf, "exempt_paths": self.csrf_exempt_paths, "errors": errors}
            found.append(("csrf", shells.CrossOriginProtectionMiddleware, options))
        if self.https_redirect is not None:
            found.append(("https_redirect", shells.HTTPSRedirectMiddleware, {"policy": self.https_redirect}))
        if self.trusted_hosts is not None:
            options = {"policy": self.trusted_hosts, "errors": errors}
            found.append(("trusted_hosts", shells.TrustedHostMiddleware, options))
        return found

    def wrap(self, app: Any, shells: Any) -> Any:
        """Wrap ``app`` in the enabled shells of ``shells`` (see :meth:`middlewares`), in stack order.

        Example::

            from backend_guard import asgi
            app = parts.wrap(app, asgi)
        """
        inner = app
        for _section, cls, options in self.middlewares(shells):
            inner = cls(inner, **options)
        return inner

    def only(self, sections: tuple[str, ...]) -> StackParts:
        """These parts with every stack section not named in ``sections`` switched off (the store, limiter
        and the parts built by :meth:`lockout`, :meth:`tokens` and :meth:`passwords` stay shared).

        Sections: ``request_id``, ``secure_headers``, ``cors``, ``errors``, ``rate_limit``, ``trusted_hosts``,
        ``https_redirect``, ``csrf``.

        Example::

            headers_only = parts.only(("secure_headers",))
        """
        narrowed = copy.copy(self)  # shallow: the same store, limiter and built parts
        for name in ("request_id", "secure_headers", "cors", "errors", "trusted_hosts", "https_redirect", "csrf"):
            if name not in sections:
                setattr(narrowed, name, None)
        if "rate_limit" not in sections:
            narrowed.rate_limit = False
            narrowed.rules = []
        return narrowed

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
            "check_routes": rl.check_routes,
            "errors": self.error_policy(),
        }

    def error_policy(self) -> ErrorPolicy:
        """The :class:`~backend_guard.errors.ErrorPolicy` every refusal of this stack is rendered with (the
        layers' 429/403/400, the route decorators'): the ``errors`` settings' (``format``...), also when the
        ErrorEnvelope itself is off or narrowed away (:meth:`only`), so one setting shapes every error.

        Example::

            parts.error_policy().format     # "envelope" under GuardSettings(errors={"format": "envelope"})
        """
        if self.errors is not None:
            return self.errors
        return self._once("error_policy", self.settings.errors.build)

    def _once(self, name: str, build: Callable[[], _T]) -> _T:
        """The part ``name``, built by ``build`` on the first call only (thread-safe; a failure is not kept)."""
        found = self._built.get(name)
        if found is None:
            with self._lock:
                found = self._built.get(name)
                if found is None:
                    found = self._built[name] = build()
        return found

    def lockout(self) -> Lockout:
        """The :class:`~backend_guard.lockout.Lockout` of the ``lockout`` settings, on the shared store.

        Built on the first call; every later call returns the same object.

        Example::

            lock = parts.lockout()

            @lock.protect()
            def login(request): ...
        """
        return self._once(
            "lockout", lambda: self.settings.lockout.build(self.store, self.client_ip, self.error_policy())
        )

    def tokens(self) -> TokenManager:
        """The :class:`~backend_guard.tokens.TokenManager` of the ``tokens`` settings, on the shared store.

        Needs ``tokens.key`` (ConfigurationError naming it otherwise). Built on the first call; every later
        call returns the same object.

        Example::

            pair = parts.tokens().issue("user-42")
        """
        return self._once("tokens", lambda: self.settings.tokens.build(self.store, self.error_policy()))

    def token_cookies(self, tm: TokenManager | None = None) -> TokenCookies:
        """The :class:`~backend_guard.TokenCookies` of the ``token_cookies`` settings: ``tm`` (default:
        :meth:`tokens`) in cookies, checked with the stack's cross-origin policy and trusted proxies.

        Needs ``token_cookies`` on in the settings (which switches ``csrf`` on for the whole stack);
        ConfigurationError otherwise. Without ``tm``, built on the first call; every later call returns it.

        Example::

            cookies = parts.token_cookies()      # GuardSettings(token_cookies=True, tokens={"key": ...})
            cookies.set(response, parts.tokens().issue("user-42"))
        """
        section = self.settings.token_cookies
        if not section.active:
            raise ConfigurationError(
                "token_cookies: cookie tokens are off in these settings; switch them on with token_cookies=True"
                " (or {'refresh_path': ...}), which also switches csrf on for the whole stack."
            )
        # The stack's own policy; a narrowed stack (parts.only(...)) without the csrf layer: the settings' policy.
        policy = self.csrf if self.csrf is not None else self.settings.csrf.build()
        errors = self.error_policy()
        if tm is None:
            manager = self.tokens()  # outside _once: its lock is not re-entrant
            return self._once("token_cookies", lambda: section.build(manager, policy, self.client_ip, errors))
        return section.build(tm, policy, self.client_ip, errors)

    def passwords(self) -> PasswordHasher:
        """The :class:`~backend_guard.passwords.PasswordHasher` of the ``passwords`` settings (the same object on
        every call).

        Example::

            ok, new_hash = parts.passwords().verify_and_update(stored, password)
        """
        return self._once("passwords", self.settings.passwords.build)

    def hasher(self) -> PasswordHasher:
        """The same as :meth:`passwords` (its older name).

        Example::

            parts.hasher().hash("correct horse battery staple")
        """
        return self.passwords()


def _browser_parts(settings: GuardSettings) -> dict[str, Any]:
    """The browser-session parts of ``settings`` as StackParts fields (each None when off)."""
    csrf = settings.csrf
    return {
        "trusted_hosts": settings.trusted_host_policy(),
        "https_redirect": settings.https_redirect_policy() if settings.https_redirect.enabled else None,
        "csrf": csrf.build() if settings.csrf_active else None,
        "csrf_exempt_paths": tuple(csrf.exempt_paths),
    }
