"""The options of :class:`~backend_guard.tokens.TokenManager`: their types, their ranges and the key ring.

What lives here: the checks a manager runs on its arguments before it holds any of them, in the order the
first wrong one is reported (types first, then the key, then the values), and the reading of ``key`` as a
:class:`~backend_guard._keys.KeyRing`. Messages name the option, never a secret it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._check import check_bool, check_callable, check_float, check_int, check_str, optional
from .._keys import KeyRing, SigningKey
from ..exceptions import ConfigurationError

__all__ = ["MAX_GRACE", "MAX_LEEWAY", "check_option_ranges", "check_option_types", "key_ring"]

#: The most clock skew (seconds) ``leeway`` may absorb.
MAX_LEEWAY = 300.0
#: The longest ``grace_window`` (seconds) a rotated refresh token may be replayed in.
MAX_GRACE = 300.0


def check_option_types(
    algorithm: object,
    key: object,
    access_ttl: object,
    refresh_ttl: object,
    leeway: object,
    grace_window: object,
    refresh_idle: object,
    check_revocation: object,
    max_token_length: object,
    clock: object,
) -> None:
    """The types of the manager's options (the first wrong one is the ConfigurationError, naming it).

    Example::

        check_option_types("EdDSA", pem, 900.0, 86400.0, 30.0, 10.0, None, False, 8192, time.time)
    """
    check_str("algorithm", algorithm)
    if isinstance(key, (bool, int, float, Mapping)) or key is None:
        raise ConfigurationError(
            f"key must be a secret (str or bytes), a PEM key, a SigningKey or a KeyRing, not {type(key).__name__}."
        )
    check_float("access_ttl", access_ttl, positive=True)
    check_float("refresh_ttl", refresh_ttl, positive=True)
    check_float("leeway", leeway, min=0)
    check_float("grace_window", grace_window, min=0)
    optional(check_float, "refresh_idle", refresh_idle, positive=True)
    check_bool("check_revocation", check_revocation)
    check_int("max_token_length", max_token_length)
    check_callable("clock", clock)


def key_ring(key: Any, algorithm: str) -> KeyRing:
    """The manager's ring: ``key`` itself, a ring of one SigningKey, or key material loaded for ``algorithm``.

    Example::

        ring = key_ring(os.environ["JWT_SECRET"], "HS256")
    """
    if isinstance(key, KeyRing):
        return key
    if isinstance(key, SigningKey):
        return KeyRing([key])
    try:
        return KeyRing([SigningKey.load(key, algorithm)])
    except ConfigurationError as exc:
        raise ConfigurationError(f"key: {exc.detail}") from None


def check_option_ranges(
    issuer: Any,
    audience: Any,
    access_ttl: float,
    refresh_ttl: float,
    leeway: float,
    grace_window: float,
    refresh_idle: float | None,
    revocation_on_storage_error: str,
    max_token_length: int,
) -> None:
    """The values of the (well-typed) options; the first rule that does not hold is the ConfigurationError.

    Example::

        check_option_ranges("https://auth.example", "api", 900.0, 86400.0, 30.0, 10.0, None, "deny", 8192)
    """
    rules = (
        (isinstance(issuer, str) and issuer != "", "issuer must be a non-empty string."),
        (isinstance(audience, str) and audience != "", "audience must be a non-empty string."),
        (0 < access_ttl <= refresh_ttl, "access_ttl must be positive and not longer than refresh_ttl."),
        (0 <= leeway <= MAX_LEEWAY, f"leeway must be between 0 and {MAX_LEEWAY:g} seconds."),
        (0 <= grace_window <= MAX_GRACE, f"grace_window must be between 0 and {MAX_GRACE:g} seconds."),
        (
            refresh_idle is None or access_ttl <= refresh_idle <= refresh_ttl,
            "refresh_idle must be between access_ttl and refresh_ttl (seconds).",
        ),
        (revocation_on_storage_error in ("deny", "allow"), "revocation_on_storage_error must be 'deny' or 'allow'."),
        (512 <= max_token_length <= 65536, "max_token_length must be between 512 and 65536 characters."),
    )
    for holds, message in rules:
        if not holds:
            raise ConfigurationError(message)
