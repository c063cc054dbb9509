"""backend_guard: security middleware for Python backends, correct by default.

The public API. Framework shells live in ``backend_guard.asgi`` and ``backend_guard.wsgi``; integrations in
``backend_guard.fastapi``, ``backend_guard.flask`` and ``backend_guard.django`` (imported on demand, so the
core never imports a web framework).

Example::

    import backend_guard as bg

    hasher = bg.PasswordHasher()
    limiter = bg.RateLimiter(store="memory://")
    result = limiter.hit("login:alice", "5/minute")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Names are imported on first use (PEP 562), so ``import backend_guard`` costs a few milliseconds and a part's
# dependencies (pydantic, PyJWT, argon2, limits) load only when that part is used. The table says where each
# public name lives; tests/test_public_api.py keeps it equal to ``__all__`` and to the imports below, which are
# what type checkers and IDEs read.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._keys": (
        "KeyRing",
        "SigningKey",
        "generate_key",
    ),
    "._logging": (
        "RequestIdFilter",
        "current_request_id",
    ),
    ".clientip": (
        "ClientIP",
        "ResolvedClient",
        "address_bucket",
    ),
    ".config": (
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
    ),
    ".cors": (
        "CORSDecision",
        "CORSPolicy",
        "cors_headers",
        "cors_route",
        "parse_origin",
    ),
    ".csrf": ("CrossOriginProtection",),
    ".errors": (
        "ErrorPolicy",
        "ResponseAborted",
        "problem_document",
        "problem_response",
    ),
    ".errors._redact": (
        "redact_headers",
        "redact_mapping",
    ),
    ".exceptions": (
        "AccountLocked",
        "AuthenticationError",
        "ConfigurationError",
        "CrossOriginRequest",
        "Forbidden",
        "GuardError",
        "InvalidCredentials",
        "InvalidHash",
        "InvalidPassword",
        "InvalidToken",
        "RateLimited",
        "StorageError",
        "TokenExpired",
        "TokenReused",
        "UnknownHost",
    ),
    ".headers": (
        "ContentSecurityPolicy",
        "PermissionsPolicy",
        "SecureHeaders",
        "csp_nonce",
    ),
    ".hosts": (
        "HTTPSRedirect",
        "TrustedHosts",
    ),
    ".lockout": (
        "Attempt",
        "LockRecord",
        "Lockout",
        "LockoutEvent",
        "LockoutStatus",
        "normalize_identifier",
    ),
    ".passwords": (
        "Argon2Parameters",
        "PasswordHasher",
        "PasswordPolicy",
        "WeakPassword",
        "calibrate",
    ),
    ".ratelimit": (
        "RateLimitResult",
        "RateLimitRule",
        "RateLimiter",
        "parse_limits",
    ),
    ".request": ("RequestView",),
    ".storage": (
        "MemoryStore",
        "RedisStore",
        "open_store",
    ),
    ".tokens": (
        "TokenCookies",
        "TokenManager",
        "TokenPair",
    ),
    ".tokens.onetime": (
        "OneTimePayload",
        "OneTimeTokens",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from ._keys import KeyRing, SigningKey, generate_key
    from ._logging import RequestIdFilter, current_request_id
    from .clientip import ClientIP, ResolvedClient, address_bucket
    from .config import (
        CORSSettings,
        CSRFSettings,
        ErrorSettings,
        GuardSettings,
        HTTPSRedirectSettings,
        LockoutSettings,
        PasswordSettings,
        RateLimitRuleSettings,
        RateLimitSettings,
        RequestIdSettings,
        SecureHeadersSettings,
        TokenCookieSettings,
        TokenSettings,
    )
    from .cors import CORSDecision, CORSPolicy, cors_headers, cors_route, parse_origin
    from .csrf import CrossOriginProtection
    from .errors import ErrorPolicy, ResponseAborted, problem_document, problem_response
    from .errors._redact import redact_headers, redact_mapping
    from .exceptions import (
        AccountLocked,
        AuthenticationError,
        ConfigurationError,
        CrossOriginRequest,
        Forbidden,
        GuardError,
        InvalidCredentials,
        InvalidHash,
        InvalidPassword,
        InvalidToken,
        RateLimited,
        StorageError,
        TokenExpired,
        TokenReused,
        UnknownHost,
    )
    from .headers import ContentSecurityPolicy, PermissionsPolicy, SecureHeaders, csp_nonce
    from .hosts import HTTPSRedirect, TrustedHosts
    from .lockout import Attempt, Lockout, LockoutEvent, LockoutStatus, LockRecord, normalize_identifier
    from .passwords import Argon2Parameters, PasswordHasher, PasswordPolicy, WeakPassword, calibrate
    from .ratelimit import RateLimiter, RateLimitResult, RateLimitRule, parse_limits
    from .request import RequestView
    from .storage import MemoryStore, RedisStore, open_store
    from .tokens import TokenCookies, TokenManager, TokenPair
    from .tokens.onetime import OneTimePayload, OneTimeTokens
else:
    from ._lazy import lazy_names

    __getattr__, __dir__ = lazy_names(
        __name__, globals(), {name: (module, name) for name, module in _MODULE_OF.items()}, submodules=True
    )


__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLocked",
    "Argon2Parameters",
    "Attempt",
    "AuthenticationError",
    "CORSDecision",
    "CORSPolicy",
    "CORSSettings",
    "CSRFSettings",
    "ClientIP",
    "ConfigurationError",
    "ContentSecurityPolicy",
    "CrossOriginProtection",
    "CrossOriginRequest",
    "ErrorPolicy",
    "ErrorSettings",
    "Forbidden",
    "GuardError",
    "GuardSettings",
    "HTTPSRedirect",
    "HTTPSRedirectSettings",
    "InvalidCredentials",
    "InvalidHash",
    "InvalidPassword",
    "InvalidToken",
    "KeyRing",
    "LockRecord",
    "Lockout",
    "LockoutEvent",
    "LockoutSettings",
    "LockoutStatus",
    "MemoryStore",
    "OneTimePayload",
    "OneTimeTokens",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordSettings",
    "PermissionsPolicy",
    "RateLimitResult",
    "RateLimitRule",
    "RateLimitRuleSettings",
    "RateLimitSettings",
    "RateLimited",
    "RateLimiter",
    "RedisStore",
    "RequestIdFilter",
    "RequestIdSettings",
    "RequestView",
    "ResolvedClient",
    "ResponseAborted",
    "SecureHeaders",
    "SecureHeadersSettings",
    "SigningKey",
    "StorageError",
    "TokenCookieSettings",
    "TokenCookies",
    "TokenExpired",
    "TokenManager",
    "TokenPair",
    "TokenReused",
    "TokenSettings",
    "TrustedHosts",
    "UnknownHost",
    "WeakPassword",
    "__version__",
    "address_bucket",
    "calibrate",
    "cors_headers",
    "cors_route",
    "csp_nonce",
    "current_request_id",
    "generate_key",
    "normalize_identifier",
    "open_store",
    "parse_limits",
    "parse_origin",
    "problem_document",
    "problem_response",
    "redact_headers",
    "redact_mapping",
]
