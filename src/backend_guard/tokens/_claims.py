"""The claims of this library's JWTs: what goes in (subject, extra claims, scope) and the checks on what comes out.

What lives here: the token kinds (``typ`` headers), :class:`TokenPair`, the reading of a subject and of the
caller's extra claims when a token is made, and the checks of the registered claims PyJWT leaves to this
library once the signature holds: the time claims (``exp``, ``nbf``, ``iat``, read only as plain finite numbers)
and the login id ``sid``. Nothing here signs or verifies a signature.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError, InvalidToken, TokenExpired

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "REFRESH_TOKEN_TYPE",
    "REQUIRED_CLAIMS",
    "TokenPair",
    "check_claims",
    "extra_claims",
    "subject_claim",
    "time_claim",
]

#: ``typ`` header of access tokens (RFC 9068).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: ``typ`` header of refresh tokens: never accepted as an access token, and the reverse.
REFRESH_TOKEN_TYPE = "rt+jwt"  # noqa: S105 - a media type, not a secret

#: The registered claims every token carries, and PyJWT requires.
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti")
_RESERVED = frozenset({*REQUIRED_CLAIMS, "sid", "ext", "typ"})
_SID = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: Bound on a time claim's magnitude in seconds (2**53: the integers a float holds exactly, year ~285 million).
_MAX_TIME_CLAIM = 2**53
# An OAuth scope-token (RFC 6749 section 3.3): printable ASCII except space, double quote and backslash.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class TokenPair:
    """What a login or a refresh returns: an access token, a refresh token, ``Bearer`` and seconds to live.

    The tokens are left out of ``repr`` so a pair never ends up in a log by accident; :meth:`as_dict` is the
    OAuth 2.0 token response body (RFC 6749 section 5.1).

    Example::

        pair = tm.issue("user-42")
        return JSONResponse(pair.as_dict())
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The token response body: ``access_token``, ``refresh_token``, ``token_type``, ``expires_in``.

        Example::

            body = pair.as_dict()
        """
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


def time_claim(value: Any) -> float:
    """A time claim (``exp``, ``nbf``, ``iat``) as a float; InvalidToken unless it is a plain, finite number.

    JSON lets a signed token carry ``NaN``, ``Infinity`` or ``1e400`` (read as infinity) and integers of any
    size: every comparison with NaN is false (a token that never expires) and ``int(inf)`` raises, so only
    ints and finite floats within +-2**53 seconds (far beyond any real date) are time claims. bool is refused.

    Example::

        time_claim(1767225600)   # 1767225600.0
    """
    kind = type(value)
    if kind is int:
        if -_MAX_TIME_CLAIM <= value <= _MAX_TIME_CLAIM:
            return float(value)
    elif kind is float and math.isfinite(value) and -_MAX_TIME_CLAIM <= value <= _MAX_TIME_CLAIM:
        return float(value)
    raise InvalidToken("The token has a malformed time claim.")


def check_claims(claims: Mapping[str, Any], now: float, leeway: float, *, verify_exp: bool = True) -> None:
    """The checks of a signed token's claims left after PyJWT's: time claims and ``sid``.

    Every time claim is checked for shape, also where its value is not compared (``verify_exp=False``, for
    revoke): a malformed claim is a malformed token, never a later error.

    Example::

        check_claims(claims, time.time(), 30.0)   # None, or TokenExpired / InvalidToken
    """
    exp, nbf, iat = time_claim(claims["exp"]), time_claim(claims["nbf"]), time_claim(claims["iat"])
    if verify_exp and exp <= now - leeway:
        raise TokenExpired("The token has expired.")
    if nbf > now + leeway or iat > now + leeway:
        raise InvalidToken("The token is not valid yet.")
    _check_sid(claims.get("sid"))


def _check_sid(sid: Any) -> None:
    """The login id: 16 to 64 base64url characters, as this library makes them."""
    if not isinstance(sid, str) or not _SID.fullmatch(sid):
        raise InvalidToken("The token is invalid.")


def subject_claim(subject: Any) -> str:
    """The ``sub`` claim for a subject given as a string or an integer primary key (``42`` -> ``"42"``).

    Example::

        subject_claim(42)   # "42"
    """
    if isinstance(subject, bool) or not isinstance(subject, (str, int)):
        raise ConfigurationError(f"subject must be a str or an int (a user id), not {type(subject).__name__}.")
    text = str(int(subject)) if isinstance(subject, int) else subject
    if not text:
        raise ConfigurationError("subject must be a non-empty string.")
    return text


def _scope_items(scope: Any) -> list[Any]:
    """The items of a scope list (a set's in sorted order); ConfigurationError for text, bytes or a mapping."""
    if isinstance(scope, (bytes, bytearray, Mapping)) or not isinstance(scope, (Sequence, set, frozenset)):
        raise ConfigurationError("The scope claim must be a string or a list of scope strings.")
    return sorted(scope) if isinstance(scope, (set, frozenset)) else list(scope)


def _scope_string(scope: Any) -> str:
    """A list (or set) of scope strings as the RFC 9068 form: one space-separated string, duplicates dropped."""
    items = _scope_items(scope)
    for item in items:
        if not isinstance(item, str) or not _SCOPE_TOKEN.fullmatch(item):
            raise ConfigurationError(
                "Each scope in a scope list must be a non-empty string without spaces, quotes or backslashes."
            )
    return " ".join(dict.fromkeys(items))


def extra_claims(claims: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caller's extra claims, checked: no registered claim, and ``scope`` as one space-separated string.

    ``scope`` may be given as a string (``"read write"``) or a list of scope strings (``["read", "write"]``);
    tokens always carry the RFC 9068 form, one space-separated string, which
    :meth:`~backend_guard.tokens.TokenManager.require_auth` reads.

    Example::

        extra_claims({"scope": ["read", "write"]})   # {"scope": "read write"}
    """
    if not claims:
        return None
    clash = _RESERVED.intersection(claims)
    if clash:
        raise ConfigurationError(f"Reserved claims cannot be set by the caller: {', '.join(sorted(clash))}.")
    extra = dict(claims)
    scope = extra.get("scope")
    if scope is not None and not isinstance(scope, str):
        extra["scope"] = _scope_string(scope)
    return extra
