"""Django integration: middleware classes for ``MIDDLEWARE``, configured from ``settings.BACKEND_GUARD``.

``GuardMiddleware`` runs the very same WSGI shells as ``backend_guard.wsgi.Guard`` around the rest of Django's
middleware chain: the request's ``META`` is a WSGI environ, Django's response is handed to them through
``start_response`` and their headers are copied back. So Django gets the same policies, byte for byte, as
every other framework, with no second implementation; it works under Django's WSGI and ASGI handlers (Django
runs this sync middleware in a thread under ASGI).

Views get the configured parts, the very objects the middleware uses (one store, one limiter, one lockout),
from :func:`parts`: ``parts().limiter``, ``parts().lockout()``, ``parts().tokens()``, ``parts().passwords()``.

Example (settings.py)::

    MIDDLEWARE = [
        "backend_guard.django.GuardMiddleware",      # first: its headers go on every response
        "django.middleware.common.CommonMiddleware",
        ...
    ]
    BACKEND_GUARD = {
        "cors": {"allow_origins": ["https://app.example.com"]},
        "rate_limit": {"rules": [{"path": "/login/", "limits": "5/minute", "methods": ["POST"]}]},
    }
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .integrations._errors_django import (
    DjangoErrorEnvelopeMiddleware,
    DjangoRequestIdMiddleware,
    csrf_failure,
    csrf_failure_detail,
)
from .integrations._headers_django import csp_nonce_context as _nonce_context
from .integrations._signals_django import lockout_event, token_event

# What builds on the settings (pydantic) or on the password hasher is imported when first read (PEP 562), as
# Django does when it reads ``MIDDLEWARE``, ``INSTALLED_APPS`` or ``PASSWORD_HASHERS``: a settings module that
# only names ``csrf_failure`` or ``csp_nonce_context`` loads neither. The table says where each name lives; the
# imports under TYPE_CHECKING are what type checkers read.
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".integrations._checks_django": ("BackendGuardConfig",),
    ".integrations._guard_django": (
        "CORSMiddleware",
        "GuardMiddleware",
        "RateLimitMiddleware",
        "SecureHeadersMiddleware",
        "parts",
        "settings",
    ),
    ".integrations._passwords_django": ("GuardPasswordHasher", "PasswordPolicyValidator"),
    ".integrations._auth_backend_django": ("GuardModelBackend",),
    ".integrations._legacy_hashers_django": (
        "LegacyArgon2PasswordHasher",
        "LegacyBCryptSHA256PasswordHasher",
        "LegacyPBKDF2PasswordHasher",
        "LegacyPBKDF2SHA1PasswordHasher",
        "LegacyScryptPasswordHasher",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from .integrations._auth_backend_django import GuardModelBackend
    from .integrations._checks_django import BackendGuardConfig
    from .integrations._guard_django import (
        CORSMiddleware,
        GuardMiddleware,
        RateLimitMiddleware,
        SecureHeadersMiddleware,
        parts,
        settings,
    )
    from .integrations._legacy_hashers_django import (
        LegacyArgon2PasswordHasher,
        LegacyBCryptSHA256PasswordHasher,
        LegacyPBKDF2PasswordHasher,
        LegacyPBKDF2SHA1PasswordHasher,
        LegacyScryptPasswordHasher,
    )
    from .integrations._passwords_django import GuardPasswordHasher, PasswordPolicyValidator
else:
    from ._lazy import lazy_names

    __getattr__, __dir__ = lazy_names(__package__, globals(), {name: (m, name) for name, m in _MODULE_OF.items()})


__all__ = [
    "BackendGuardConfig",
    "CORSMiddleware",
    "ErrorEnvelopeMiddleware",
    "GuardMiddleware",
    "GuardModelBackend",
    "GuardPasswordHasher",
    "LegacyArgon2PasswordHasher",
    "LegacyBCryptSHA256PasswordHasher",
    "LegacyPBKDF2PasswordHasher",
    "LegacyPBKDF2SHA1PasswordHasher",
    "LegacyScryptPasswordHasher",
    "PasswordPolicyValidator",
    "RateLimitMiddleware",
    "RequestIdMiddleware",
    "SecureHeadersMiddleware",
    "csp_nonce_context",
    "csrf_failure",
    "csrf_failure_detail",
    "lockout_event",
    "parts",
    "settings",
    "token_event",
]

ErrorEnvelopeMiddleware = DjangoErrorEnvelopeMiddleware
RequestIdMiddleware = DjangoRequestIdMiddleware


def csp_nonce_context(request: Any) -> dict[str, Any]:
    """Template context processor: ``{{ csp_nonce }}`` in templates (made lazily, on first use).

    Example (settings.py)::

        TEMPLATES[0]["OPTIONS"]["context_processors"].append("backend_guard.django.csp_nonce_context")
    """
    return _nonce_context(request)
