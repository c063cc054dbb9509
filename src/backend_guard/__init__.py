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

from ._keys import KeyRing, SigningKey, generate_key
from ._logging import RequestIdFilter, current_request_id
from .clientip import ClientIP, ResolvedClient, address_bucket
from .config import (
    CORSSettings,
    ErrorSettings,
    GuardSettings,
    LockoutSettings,
    PasswordSettings,
    RateLimitRuleSettings,
    RateLimitSettings,
    RequestIdSettings,
    SecureHeadersSettings,
    TokenSettings,
)
from .cors import CORSDecision, CORSPolicy, cors_headers, cors_route, parse_origin
from .errors import ErrorPolicy, ResponseAborted, problem_document, problem_response
from .errors._redact import redact_headers, redact_mapping
from .exceptions import (
    AccountLocked,
    AuthenticationError,
    ConfigurationError,
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
)
from .headers import ContentSecurityPolicy, PermissionsPolicy, SecureHeaders, csp_nonce
from .lockout import Attempt, Lockout, LockoutEvent, LockoutStatus, LockRecord, normalize_identifier
from .passwords import Argon2Parameters, PasswordHasher, calibrate
from .ratelimit import RateLimiter, RateLimitResult, RateLimitRule, parse_limits
from .request import RequestView
from .storage import MemoryStore, RedisStore, open_store
from .tokens import TokenManager, TokenPair
from .tokens.onetime import OneTimePayload, OneTimeTokens

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLocked",
    "Argon2Parameters",
    "Attempt",
    "AuthenticationError",
    "CORSDecision",
    "CORSPolicy",
    "CORSSettings",
    "ClientIP",
    "ConfigurationError",
    "ContentSecurityPolicy",
    "ErrorPolicy",
    "ErrorSettings",
    "Forbidden",
    "GuardError",
    "GuardSettings",
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
    "TokenExpired",
    "TokenManager",
    "TokenPair",
    "TokenReused",
    "TokenSettings",
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
