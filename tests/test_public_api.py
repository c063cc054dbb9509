"""The public API is a contract (../shared/DESIGN.md): pin it, keep it sorted, keep the core framework-free."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

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
    "CORSSettings", "CSRFSettings", "ClientIP", "ConfigurationError", "ContentSecurityPolicy",
    "CrossOriginProtection", "CrossOriginRequest", "ErrorPolicy", "ErrorSettings",
    "Forbidden", "GuardError", "GuardSettings", "HTTPSRedirect", "HTTPSRedirectSettings", "InvalidCredentials",
    "InvalidHash", "InvalidPassword",
    "InvalidToken", "KeyRing", "LockRecord", "Lockout", "LockoutEvent", "LockoutSettings", "LockoutStatus",
    "MemoryStore", "OneTimePayload", "OneTimeTokens", "PasswordHasher", "PasswordPolicy", "PasswordSettings",
    "PermissionsPolicy", "RateLimitResult", "RateLimitRule", "RateLimitRuleSettings", "RateLimitSettings",
    "RateLimited", "RateLimiter", "RedisStore", "RequestIdFilter", "RequestIdSettings", "RequestView",
    "ResolvedClient", "ResponseAborted", "SecureHeaders", "SecureHeadersSettings", "SigningKey", "StorageError",
    "TokenCookieSettings", "TokenCookies", "TokenExpired", "TokenManager", "TokenPair", "TokenReused",
    "TokenSettings", "TrustedHosts", "UnknownHost", "WeakPassword",
    "__version__",
    "address_bucket", "calibrate", "cors_headers", "cors_route", "csp_nonce", "current_request_id", "generate_key",
    "normalize_identifier", "open_store", "parse_limits", "parse_origin", "problem_document", "problem_response",
    "redact_headers", "redact_mapping",
]  # fmt: skip

SHELLS = [
    "CORSMiddleware", "CrossOriginProtectionMiddleware", "ErrorEnvelopeMiddleware", "Guard", "HTTPSRedirectMiddleware",
    "ProxyHeadersMiddleware", "RateLimitMiddleware", "RequestIdMiddleware", "SecureHeadersMiddleware",
    "TrustedHostMiddleware",
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


def _type_checking_imports() -> dict[str, set[str]]:
    """The names ``backend_guard/__init__.py`` imports for type checkers, by module (relative, as written)."""
    tree = ast.parse(Path(bg.__file__).read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                found.setdefault("." * stmt.level + (stmt.module or ""), set()).update(a.name for a in stmt.names)
    return found


def test_the_lazy_table_type_checkers_and_all_name_the_same_things() -> None:
    table = {module: set(names) for module, names in bg._EXPORTS.items()}
    assert table == _type_checking_imports()
    assert sorted(name for names in table.values() for name in names) == [n for n in bg.__all__ if n != "__version__"]
    for module, names in table.items():
        for name in names:
            assert getattr(importlib.import_module(module, "backend_guard"), name) is getattr(bg, name)


def test_an_unknown_name_is_an_attribute_error_and_submodules_load_on_demand() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = bg.NoSuchName  # type: ignore[attr-defined]
    assert bg.cors.CORSPolicy is bg.CORSPolicy  # type: ignore[attr-defined]
    assert "RateLimiter" in dir(bg)


def test_import_backend_guard_loads_no_part_and_no_heavy_dependency() -> None:
    # What serverless functions and CLIs pay on every start: the parts and their dependencies load on first use.
    code = (
        "import sys, backend_guard;"
        "heavy = ('pydantic', 'jwt', 'argon2', 'limits', 'redis', 'cryptography', 'backend_guard.ratelimit',"
        " 'backend_guard.config', 'backend_guard.passwords', 'backend_guard.tokens');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    code = "import backend_guard as bg; from backend_guard import *; print(RateLimiter is bg.RateLimiter)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_shell_packages_load_no_settings_until_guard_is_used() -> None:
    # A single middleware (CORS, secure headers...) needs neither pydantic nor the token or password parts:
    # `Guard`, which reads settings, loads them when first used.
    code = (
        "import sys, backend_guard.asgi, backend_guard.wsgi;"
        "from backend_guard.asgi import CORSMiddleware, SecureHeadersMiddleware;"
        "heavy = ('pydantic', 'jwt', 'argon2', 'backend_guard.config', 'backend_guard._stack');"
        "print(','.join(m for m in heavy if m in sys.modules));"
        "backend_guard.asgi.Guard; backend_guard.wsgi.Guard;"
        "print('config' if 'backend_guard.config' in sys.modules else '')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["", "config"]
