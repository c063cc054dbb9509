"""JWT access tokens and rotating refresh tokens with reuse detection, on PyJWT.

The public names of the package, re-exported from the modules that hold them: :class:`TokenManager`
(``_manager.py``, with its claims ``_claims.py``, compact form and header ``_header.py``, grace seal
``_seal.py``, route hooks ``_routes.py`` and atomic store steps ``_scripts.py``), :class:`TokenCookies`
(tokens in cookies for browser apps, ``_cookies.py``, on ``_cookie_jar.py``), :class:`TokenPair` and the
``typ`` headers (``_claims.py``). One-time tokens for mailed links are :mod:`backend_guard.tokens.onetime`.

Example::

    from backend_guard.tokens import TokenManager

    tm = TokenManager(pem, "EdDSA", issuer="https://auth.example", audience="https://api.example")
    claims = tm.verify_access(tm.issue("user-42").access_token)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._claims import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, TokenPair

if TYPE_CHECKING:
    from ._cookies import TokenCookies
    from ._header import digest as _digest  # noqa: F401 - the store digest of a refresh token, read by tests
    from ._manager import TokenManager
else:
    # Imported when first read (PEP 562): they load cryptography (key material, seals) and, once a manager is
    # built, PyJWT. The claims, the store scripts and the operator's view of token families need neither.
    from .._lazy import lazy_names

    _LAZY = {"TokenCookies": ("._cookies", "TokenCookies"), "TokenManager": ("._manager", "TokenManager")}
    _LAZY["_digest"] = ("._header", "digest")

    __getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY)


__all__ = ["ACCESS_TOKEN_TYPE", "REFRESH_TOKEN_TYPE", "TokenCookies", "TokenManager", "TokenPair"]
