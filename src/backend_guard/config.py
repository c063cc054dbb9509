"""Settings for the whole stack: pydantic models, validated when built, loadable from the environment.

Each section maps onto one part's constructor. Only the fields you set are passed on, so every default lives
in one place: the part itself. Building a :class:`GuardSettings` also builds every enabled part's policy once,
so an unsafe or invalid value (CORS ``*`` with credentials, a CSP keyword without quotes, a rate string that
does not parse) fails at start-up with a :class:`~backend_guard.exceptions.ConfigurationError` that names the
setting. After that, the request path never touches pydantic: shells get compiled policy objects.

Environment variables: ``BACKEND_GUARD_<FIELD>`` for top-level fields and ``BACKEND_GUARD_<SECTION>__<FIELD>``
for section fields (``BACKEND_GUARD_CORS__ALLOW_ORIGINS='["https://app.example.com"]'``). Values are JSON
when they parse as JSON, plain strings otherwise; lists may also be written comma-separated.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

# ``_tokens.TokenManager`` is imported when a TokenSettings first builds one (the token package's PEP 562 table):
# it loads cryptography, which settings that sign no tokens, and so every framework integration, never need.
from . import tokens as _tokens
from ._browser_settings import CSRFSettings, HTTPSRedirectSettings, TokenCookieSettings, trusted_hosts
from ._settings_base import Section as _Section
from ._settings_base import Strict as _Strict
from ._settings_base import problems as _problems
from ._settings_env import ENV_PREFIX, SWITCHES, env_data, over, plain_sections, tell_taken
from .clientip import ClientIP
from .cors import CORSPolicy
from .errors import ErrorPolicy
from .exceptions import ConfigurationError
from .headers import ContentSecurityPolicy, SecureHeaders
from .lockout import MAX_ADDRESS_FAILURES, MAX_DURATION, NIST_CEILING, Lockout
from .passwords import DEFAULT_PARAMETERS, PasswordHasher
from .ratelimit import RateLimiter, RateLimitRule, parse_limits
from .storage import open_store

if TYPE_CHECKING:
    from .hosts import HTTPSRedirect, TrustedHosts
    from .storage import Store
    from .tokens import TokenManager

__all__ = [
    "CORSSettings",
    "CSRFSettings",
    "ErrorSettings",
    "GuardSettings",
    "HTTPSRedirectSettings",
    "LockoutSettings",
    "PasswordSettings",
    "RateLimitRuleSettings",
    "RateLimitSettings",
    "RequestIdSettings",
    "SecureHeadersSettings",
    "TokenCookieSettings",
    "TokenSettings",
]


class RequestIdSettings(_Section):
    """Request ids: accept a safe incoming ``X-Request-ID`` or make one; on every response and log record.

    Example::

        RequestIdSettings(header="X-Correlation-ID", trust_incoming=False)
    """

    enabled: bool = True
    header: str = "X-Request-ID"
    trust_incoming: bool = True


class SecureHeadersSettings(_Section):
    """Security headers (see :class:`~backend_guard.headers.SecureHeaders`); unset fields keep the preset's.

    Example::

        SecureHeadersSettings(preset="web", no_store_paths=["/account"])
    """

    enabled: bool = True
    preset: Literal["api", "web"] = "api"
    csp: str | None = None
    document_csp: str | None = None
    csp_report_only: str | None = None
    hsts: bool = True
    hsts_max_age: int = Field(63_072_000, ge=0)
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    force_hsts: bool = False
    x_frame_options: str | None = "DENY"
    referrer_policy: str | None = None
    permissions_policy: str | None = None
    cross_origin_opener_policy: str | None = "same-origin"
    cross_origin_embedder_policy: str | None = None
    cross_origin_resource_policy: str | None = "same-origin"
    no_store_paths: list[str] = []
    reporting_endpoints: dict[str, str] = {}

    def build(self) -> SecureHeaders:
        """The compiled :class:`~backend_guard.headers.SecureHeaders`."""
        kwargs = self._kwargs()
        for name in ("csp", "document_csp", "csp_report_only"):
            if isinstance(kwargs.get(name), str):
                kwargs[name] = ContentSecurityPolicy.parse(kwargs[name])
        return SecureHeaders(**kwargs)


class CORSSettings(_Section):
    """CORS (see :class:`~backend_guard.cors.CORSPolicy`); on when any origin is configured.

    Example::

        CORSSettings(allow_origins=["https://app.example.com"], allow_credentials=True)
    """

    enabled: bool | None = None
    allow_origins: list[str] = []
    allow_origin_patterns: list[str] = []
    allow_origin_regex: str | None = None
    allow_methods: list[str] = ["GET", "HEAD", "POST"]
    allow_headers: list[str] = []
    expose_headers: list[str] = []
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0)
    allow_private_network: bool = False
    paths: list[str] | None = None

    @property
    def active(self) -> bool:
        """True when CORS is on: explicitly, or by configuring any origin."""
        if self.enabled is not None:
            return self.enabled
        return bool(self.allow_origins or self.allow_origin_patterns or self.allow_origin_regex)

    def build(self) -> CORSPolicy:
        """The compiled :class:`~backend_guard.cors.CORSPolicy`."""
        return CORSPolicy(**self._kwargs())


class ErrorSettings(_Section):
    """Error documents (see :class:`~backend_guard.errors.ErrorPolicy`).

    Example::

        ErrorSettings(format="envelope")
    """

    enabled: bool = True
    format: Literal["problem", "envelope"] = "problem"
    expose_exception_details: bool = False
    rewrite_plain_errors: Literal["api", "always", "never"] = "api"
    include_instance: bool = False

    def build(self) -> ErrorPolicy:
        """The :class:`~backend_guard.errors.ErrorPolicy`."""
        return ErrorPolicy(**self._kwargs())


class RateLimitRuleSettings(_Section):
    """One rate limit rule: a path pattern (``/users/{id}``), its limits, methods and key.

    Example::

        RateLimitRuleSettings(path="/login", limits="5/minute;20/hour", methods=["POST"])
    """

    path: str
    limits: str = ""
    methods: list[str] | None = None
    key: str | None = None
    scope: str | None = None
    cost: int = Field(1, ge=0)
    exempt: bool = False
    name: str | None = None
    custom_methods: bool = False

    def build(self) -> RateLimitRule:
        """The :class:`~backend_guard.ratelimit.RateLimitRule`."""
        return RateLimitRule(**self._kwargs())


class RateLimitSettings(_Section):
    """Rate limiting (see :class:`~backend_guard.ratelimit.RateLimiter`): a global limit and path rules.

    ``check_routes`` (on by default): when the app starts, a rule whose path matches none of the app's routes
    is refused (see :func:`~backend_guard.ratelimit.check_rule_routes`).

    Example::

        RateLimitSettings(default_limits="100/minute", rules=[{"path": "/login", "limits": "5/minute"}])
    """

    enabled: bool = True
    store: str | None = None
    strategy: str | None = None
    default_limits: str | None = None
    key: str | None = None
    rules: list[RateLimitRuleSettings] = []  # each rule may be a dict (its fields strict)
    on_storage_error: Literal["allow", "deny", "raise"] = "allow"
    headers: bool = True
    legacy_headers: bool = False
    ipv6_prefix: int = Field(64, ge=1, le=128)
    check_routes: bool = True

    @property
    def active(self) -> bool:
        """True when there is something to limit."""
        return self.enabled and bool(self.default_limits or self.rules)

    def build_limiter(self, store: Store | str, client_ip: ClientIP, errors: ErrorPolicy | None = None) -> RateLimiter:
        """The :class:`~backend_guard.ratelimit.RateLimiter` (its decorators' refusals rendered under ``errors``)."""
        kwargs = self._kwargs("store", "default_limits", "key", "rules", "ipv6_prefix", "check_routes")
        if kwargs.get("strategy") is None:
            kwargs.pop("strategy", None)
        return RateLimiter(self.store or store, client_ip=client_ip, errors=errors, **kwargs)

    def check_default_limits(self) -> None:
        """Parse ``default_limits`` (raises ConfigurationError when it does not parse)."""
        if self.default_limits:
            parse_limits([self.default_limits])

    def build_rules(self) -> list[RateLimitRule]:
        """The compiled rules."""
        return [rule.build() for rule in self.rules]


class LockoutSettings(_Section):
    """Account lockout (see :class:`~backend_guard.lockout.Lockout`); unset fields keep its defaults.

    Example::

        LockoutSettings(max_failures=5, lockout_duration=600, generic=True)
    """

    enabled: bool = True
    store: str | None = None
    max_failures: int = Field(5, ge=1, le=NIST_CEILING)
    window: float = Field(900.0, gt=0, le=MAX_DURATION)
    lockout_duration: float = Field(300.0, gt=0, le=MAX_DURATION)
    backoff_factor: float = Field(2.0, ge=1, le=100)
    max_lockout_duration: float = Field(3600.0, gt=0, le=MAX_DURATION)
    account_max_failures: int | None = Field(20, ge=1, le=NIST_CEILING)
    account_ceiling: int = Field(NIST_CEILING, ge=1, le=NIST_CEILING)
    address_max_failures: int | None = Field(None, ge=1, le=MAX_ADDRESS_FAILURES)
    extend_while_locked: bool = False
    generic: bool = False
    on_storage_error: Literal["allow", "deny"] = "deny"
    secret: SecretStr | None = None

    def build(
        self, store: Store | str, client_ip: ClientIP | None = None, errors: ErrorPolicy | None = None
    ) -> Lockout:
        """The :class:`~backend_guard.lockout.Lockout` (its refusals rendered under ``errors``)."""
        return Lockout(self.store or store, client_ip=client_ip, errors=errors, **self._kwargs("store"))


class TokenSettings(_Section):
    """JWT access/refresh tokens (see :class:`~backend_guard.tokens.TokenManager`); off until a key is set.

    ``key`` is an HMAC secret or a PEM private key (keep it in the environment:
    ``BACKEND_GUARD_TOKENS__KEY``).

    Example::

        TokenSettings(key=os.environ["JWT_SECRET"], algorithm="HS256", issuer="https://api", audience="app")
    """

    key: SecretStr | None = None
    algorithm: str = "EdDSA"
    issuer: str = "backend-guard"
    audience: str = "backend-guard"
    store: str | None = None
    access_ttl: float = Field(900.0, gt=0)
    refresh_ttl: float = Field(14 * 86400.0, gt=0)
    leeway: float = Field(30.0, ge=0)
    grace_window: float = Field(10.0, ge=0)
    refresh_idle: float | None = Field(None, gt=0)
    check_revocation: bool = False
    revocation_on_storage_error: Literal["deny", "allow"] = "deny"

    @property
    def active(self) -> bool:
        """True when a signing key is configured."""
        return self.key is not None

    def build(self, store: Store | str, errors: ErrorPolicy | None = None) -> TokenManager:
        """The :class:`~backend_guard.tokens.TokenManager` (needs ``key``; its refusals rendered under ``errors``)."""
        if self.key is None:
            raise ConfigurationError(
                "tokens.key: a signing key is required to build a TokenManager. Set GuardSettings(tokens={'key': "
                "...}) or BACKEND_GUARD_TOKENS__KEY to a key made by `backend-guard keys` or bg.generate_key()."
            )
        kwargs = self._kwargs("store", "key", "algorithm", "issuer", "audience")
        return _tokens.TokenManager(
            self.key.get_secret_value(),
            self.algorithm,
            issuer=self.issuer,
            audience=self.audience,
            store=self.store or store,
            errors=errors,
            **kwargs,
        )


class PasswordSettings(_Section):
    """Password hashing (see :class:`~backend_guard.passwords.PasswordHasher`).

    Example::

        PasswordSettings(memory_cost=65536, time_cost=3)
    """

    memory_cost: int | None = Field(None, ge=8)
    time_cost: int | None = Field(None, ge=1)
    parallelism: int | None = Field(None, ge=1)
    normalize: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = "NFKC"
    max_password_bytes: int = Field(1024, ge=8)
    accept_legacy: bool = True

    def build(self) -> PasswordHasher:
        """The :class:`~backend_guard.passwords.PasswordHasher`."""
        params = DEFAULT_PARAMETERS
        changes = {k: getattr(self, k) for k in ("memory_cost", "time_cost", "parallelism") if getattr(self, k)}
        if changes:
            params = dataclasses.replace(params, **changes)
        return PasswordHasher(params, **self._kwargs("memory_cost", "time_cost", "parallelism"))


class GuardSettings(_Strict):
    """Settings for the whole stack; every section can be switched off or given its own values.

    Building one validates everything (and builds each enabled policy once), raising ConfigurationError with
    the setting's name on any invalid or unsafe value. ``GuardSettings.from_env()`` reads
    ``BACKEND_GUARD_...`` variables.

    Example::

        settings = bg.GuardSettings(
            trusted_proxies=["10.0.0.0/8"],
            cors={"allow_origins": ["https://app.example.com"]},
            rate_limit={"default_limits": "100/minute"},
        )
        app = backend_guard.asgi.Guard(app, settings)
    """

    store: str = "memory://"
    trusted_proxies: list[str] = []
    forwarded_header: Literal["x-forwarded-for", "forwarded", "any"] = "x-forwarded-for"
    forwarded_fields: list[Literal["for", "proto", "host"]] = ["for", "proto"]
    # Sections may be given as dicts (strict=False here); their own fields stay strict.
    request_id: RequestIdSettings = Field(RequestIdSettings(), strict=False)
    secure_headers: SecureHeadersSettings = Field(SecureHeadersSettings(), strict=False)
    cors: CORSSettings = Field(CORSSettings(), strict=False)
    errors: ErrorSettings = Field(ErrorSettings(), strict=False)
    rate_limit: RateLimitSettings = Field(RateLimitSettings(), strict=False)
    lockout: LockoutSettings = Field(LockoutSettings(), strict=False)
    tokens: TokenSettings = Field(TokenSettings(), strict=False)
    passwords: PasswordSettings = Field(PasswordSettings(), strict=False)
    # Browser sessions (off by default): the Host allowlist, the HTTPS redirect, cross-origin protection.
    trusted_hosts: list[str] = []
    https_redirect: HTTPSRedirectSettings = Field(HTTPSRedirectSettings(), strict=False)
    csrf: CSRFSettings = Field(CSRFSettings(), strict=False)
    # Tokens in cookies (off by default); on, they switch csrf on and refuse csrf=False.
    token_cookies: TokenCookieSettings = Field(TokenCookieSettings(), strict=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None

    @field_validator(*SWITCHES, mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """``csrf=True`` / ``https_redirect=False``: the section's ``enabled`` alone."""
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+", "rediss+", "unix://")):
            raise ValueError("must be memory://, redis://, rediss://, redis+sentinel:// or redis+cluster://")
        return value

    @model_validator(mode="after")
    def _build_policies(self) -> GuardSettings:
        """Build every enabled policy once, so invalid values fail now and name their setting."""
        # ClientIP's messages name their own setting (trusted_proxies, forwarded_header, forwarded_fields).
        if self.token_cookies.active and self.csrf.enabled is False:
            raise ValueError(
                "csrf: cookie tokens (token_cookies) need cross-origin request protection; csrf=False is refused"
                " while token_cookies is on (configure it with csrf={...} instead, or leave it out: it is on)."
            )
        checks: list[tuple[str, Any]] = [("", self.client_ip), *self._policy_checks()]
        for section, build in checks:
            try:
                build()
            except ConfigurationError as exc:
                raise ValueError(f"{section}: {exc.detail}" if section else exc.detail) from None
        return self

    def _policy_checks(self) -> list[tuple[str, Any]]:
        """(section, build) for each enabled section whose policy is built at start-up, in order."""
        rate_limit = self.rate_limit
        groups: list[tuple[bool, list[tuple[str, Any]]]] = [
            (self.secure_headers.enabled, [("secure_headers", self.secure_headers.build)]),
            (self.cors.active, [("cors", self.cors.build)]),
            (self.errors.enabled, [("errors", self.errors.build)]),
            (bool(self.trusted_hosts), [("trusted_hosts", self.trusted_host_policy)]),
            (self.https_redirect.enabled, [("https_redirect", self.https_redirect_policy)]),
            (self.csrf_active, [("csrf", self.csrf.check)]),
            (self.token_cookies.active, [("token_cookies", self.token_cookies.check)]),
            (
                rate_limit.active,
                [
                    ("rate_limit", rate_limit.build_rules),
                    ("rate_limit.default_limits", rate_limit.check_default_limits),
                    ("rate_limit", lambda: rate_limit.build_limiter("memory://", self.client_ip())),
                ],
            ),
        ]
        return [check for enabled, group in groups if enabled for check in group]

    @classmethod
    def coerce(cls, value: Any, where: str, environ: Mapping[str, str] | None = None) -> GuardSettings:
        """Settings from a framework's config value: None (defaults), a dict, or a GuardSettings.

        None and a dict are read over the ``BACKEND_GUARD_...`` environment variables (:meth:`from_env`): the
        dict wins for each field both set, so ``BACKEND_GUARD_STORE`` reaches an app whose dict sets only
        ``trusted_proxies``, as it reaches the ``backend-guard`` command line. A GuardSettings is taken whole.
        ``where`` names the source in error messages (``"settings.BACKEND_GUARD"``). Unknown keys fail too:
        a misspelt section would otherwise leave its part silently on its defaults.

        Example::

            GuardSettings.coerce(app.config.get("BACKEND_GUARD"), "app.config['BACKEND_GUARD']")
        """
        if isinstance(value, cls):
            return value
        if value is not None and not isinstance(value, dict):
            raise ConfigurationError(f"{where} must be a dict or a GuardSettings, not {type(value).__name__}.")
        env = env_data(cls.model_fields, os.environ if environ is None else environ, ENV_PREFIX)
        given = plain_sections(value or {})
        if env:
            tell_taken(env, given, where)
            where = f"{where} (over the {ENV_PREFIX}* environment variables)"
        try:
            return cls(**over(cls.model_fields, env, given))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc.detail}") from None

    @property
    def csrf_active(self) -> bool:
        """True when cross-origin protection runs: ``csrf`` switched on or configured, or cookie tokens on.

        Example::

            >>> GuardSettings(token_cookies=True).csrf_active
            True
        """
        return self.csrf.active or self.token_cookies.active

    def client_ip(self) -> ClientIP:
        """The :class:`~backend_guard.clientip.ClientIP` for ``trusted_proxies``."""
        return ClientIP(
            self.trusted_proxies, forwarded_header=self.forwarded_header, forwarded_fields=self.forwarded_fields
        )

    def trusted_host_policy(self) -> TrustedHosts | None:
        """The :class:`~backend_guard.TrustedHosts` of ``trusted_hosts``; None when the list is empty (off)."""
        return trusted_hosts(self.trusted_hosts)

    def https_redirect_policy(self) -> HTTPSRedirect:
        """The :class:`~backend_guard.HTTPSRedirect` of ``https_redirect``, never redirecting to a host
        ``trusted_hosts`` refuses."""
        return self.https_redirect.build(self.trusted_host_policy())

    def open_store(self) -> Store:
        """The store named by ``store`` (one object, to share between the parts)."""
        return open_store(self.store)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX) -> GuardSettings:
        """Settings from ``BACKEND_GUARD_...`` variables (nested sections with ``__``).

        Example::

            # BACKEND_GUARD_STORE=redis://cache:6379/0
            # BACKEND_GUARD_CORS__ALLOW_ORIGINS=https://a.example.com,https://b.example.com
            # BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS=100/minute
            settings = GuardSettings.from_env()
        """
        return cls(**env_data(cls.model_fields, os.environ if environ is None else environ, prefix))


def _explain(exc: ValidationError) -> str:
    """One line per problem: the setting's dotted name and what is wrong (never the value: it may be secret)."""
    return "Invalid backend_guard settings: " + "; ".join(f"{where}: {msg}" for where, msg in _problems(exc))
