"""Redaction of secrets before anything reaches a log record, an error body or a repr.

One helper every part uses: header pairs (``Authorization``, ``Cookie``, ``Set-Cookie``,
``Proxy-Authorization``, API-key headers) and mappings whose keys look like passwords, tokens or secrets
(recursively, through nested mappings and lists) have their values replaced by ``"[redacted]"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "is_sensitive_key", "redact_headers", "redact_mapping"]

REDACTED = "[redacted]"

#: Header names (lower case) whose values are always secret.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|auth|cookie|session|credential|private[-_]?key|"
    r"signature|otp|pin$",
    re.IGNORECASE,
)

S = TypeVar("S", str, bytes)


def is_sensitive_key(name: str | bytes) -> bool:
    """True when a header name or mapping key names a secret (password, token, secret, cookie, ...).

    Example::

        >>> is_sensitive_key("new_password"), is_sensitive_key("email")
        (True, False)
    """
    text = name.decode("latin-1") if isinstance(name, bytes) else str(name)
    if text.lower() in SENSITIVE_HEADERS:
        return True
    return _SENSITIVE_KEY.search(text) is not None


def redact_headers(headers: Iterable[tuple[S, S]]) -> list[tuple[S, S]]:
    """Header pairs (str or bytes) with the values of secret headers replaced by ``[redacted]``.

    Example::

        >>> redact_headers([("Authorization", "Bearer abc"), ("Accept", "*/*")])
        [('Authorization', '[redacted]'), ('Accept', '*/*')]
    """
    out: list[tuple[S, S]] = []
    for name, value in headers:
        if is_sensitive_key(name):
            redacted: Any = REDACTED.encode() if isinstance(value, bytes) else REDACTED
            out.append((name, redacted))
        else:
            out.append((name, value))
    return out


def _redact_value(value: Any, depth: int) -> Any:
    if depth > 20:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_sensitive_key(str(k)) else _redact_value(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, depth + 1) for v in value]
    return value


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with secret-looking keys' values redacted, through nested mappings and lists.

    Example::

        >>> redact_mapping({"email": "a@b.c", "password": "hunter2", "nested": {"api_key": "k"}})
        {'email': 'a@b.c', 'password': '[redacted]', 'nested': {'api_key': '[redacted]'}}
    """
    result: dict[str, Any] = _redact_value(data, 0)
    return result
