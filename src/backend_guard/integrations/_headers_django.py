"""Django template context processor offering the CSP nonce as ``{{ csp_nonce }}`` (made only if rendered)."""

from __future__ import annotations

from typing import Any

from ..headers import csp_nonce

__all__ = ["csp_nonce_context"]


def csp_nonce_context(request: Any) -> dict[str, Any]:
    """Context processor: ``{{ csp_nonce }}`` renders this response's nonce, made lazily on first use.

    Example::

        TEMPLATES[0]["OPTIONS"]["context_processors"].append(
            "backend_guard.integrations._headers_django.csp_nonce_context")
    """
    from django.utils.functional import lazy

    return {"csp_nonce": lazy(csp_nonce, str)(request)}
