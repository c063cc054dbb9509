"""The public API is a contract (../shared/DESIGN.md): pin it, keep it sorted, keep the core framework-free."""

from __future__ import annotations

import subprocess
import sys

import backend_guard as bg
import backend_guard.asgi
import backend_guard.wsgi

CONTRACT = {
    # errors
    "GuardError", "ConfigurationError", "StorageError", "RateLimited", "AccountLocked", "AuthenticationError",
    "InvalidToken", "TokenExpired", "TokenReused", "problem_response",
    # parts
    "PasswordHasher", "TokenManager", "TokenPair", "OneTimeTokens", "Lockout", "LockoutStatus", "RateLimiter",
    "RateLimitResult", "SecureHeaders", "ContentSecurityPolicy", "csp_nonce", "CORSPolicy", "ClientIP",
    "GuardSettings",
}  # fmt: skip

PINNED = [
    "AccountLocked", "Argon2Parameters", "Attempt", "AuthenticationError", "CORSDecision", "CORSPolicy",
    "CORSSettings", "ClientIP", "ConfigurationError", "ContentSecurityPolicy", "ErrorPolicy", "ErrorSettings",
    "Forbidden", "GuardError", "GuardSettings", "InvalidCredentials", "InvalidHash", "InvalidPassword",
    "InvalidToken", "KeyRing", "LockRecord", "Lockout", "LockoutEvent", "LockoutSettings", "LockoutStatus",
    "MemoryStore", "OneTimePayload", "OneTimeTokens", "PasswordHasher", "PasswordSettings", "PermissionsPolicy",
    "RateLimitResult", "RateLimitRule", "RateLimitRuleSettings", "RateLimitSettings", "RateLimited",
    "RateLimiter", "RedisStore", "RequestIdFilter", "RequestIdSettings", "RequestView", "ResolvedClient",
    "ResponseAborted", "SecureHeaders", "SecureHeadersSettings", "SigningKey", "StorageError", "TokenExpired",
    "TokenManager", "TokenPair", "TokenReused", "TokenSettings", "__version__", "address_bucket", "calibrate",
    "cors_headers", "cors_route", "csp_nonce", "current_request_id", "generate_key", "normalize_identifier",
    "open_store", "parse_limits", "parse_origin", "problem_document", "problem_response", "redact_headers",
    "redact_mapping",
]  # fmt: skip

SHELLS = [
    "CORSMiddleware", "ErrorEnvelopeMiddleware", "Guard", "ProxyHeadersMiddleware", "RateLimitMiddleware",
    "RequestIdMiddleware",
    "SecureHeadersMiddleware",
]  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    assert bg.__all__ == PINNED
    assert sorted(bg.__all__) == bg.__all__


def test_contract_names_exist() -> None:
    missing = CONTRACT - set(bg.__all__)
    assert not missing
    for name in bg.__all__:
        assert hasattr(bg, name), name


def test_shell_packages_export_every_middleware() -> None:
    for module in (backend_guard.asgi, backend_guard.wsgi):
        assert module.__all__ == SHELLS
        for name in SHELLS:
            assert callable(getattr(module, name)), (module.__name__, name)


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    for name in bg.__all__:
        obj = getattr(bg, name)
        if name == "__version__":
            continue
        doc = obj.__doc__ or ""
        assert doc.strip(), f"{name} has no docstring"
        assert "Example" in doc or ">>>" in doc, f"{name}'s docstring has no example"


def test_error_tree_shape() -> None:
    assert issubclass(bg.ConfigurationError, ValueError)
    for exc in (bg.RateLimited(3), bg.AccountLocked(3), bg.InvalidToken(), bg.TokenReused(), bg.StorageError()):
        assert isinstance(exc, bg.GuardError)
        assert 400 <= exc.status < 600
        assert exc.code


def test_importing_the_core_imports_no_web_framework() -> None:
    code = (
        "import sys, backend_guard, backend_guard.asgi, backend_guard.wsgi;"
        "bad = [m for m in ('starlette', 'fastapi', 'flask', 'django', 'werkzeug') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
