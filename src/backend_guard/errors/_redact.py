"""Redaction of secrets before anything reaches a log record, an error body or a repr.

One helper every part uses: header pairs (``Authorization``, ``Cookie``, ``Set-Cookie``,
``Proxy-Authorization``, ``X-JWT-Assertion``, ``DPoP``, API-key headers) and mappings whose keys name a secret
(``password``, ``pw``, ``jwt``, ``bearer``, ``dsn``, ``database_url``, ``privkey``, ``mfa_code``,
``subscription_key``, ``client_assertion``, glued ``oldpw``/``newpwd``/``dbpass``, ...: matched by the words of
the name, so ``author``, ``passport`` or ``bypass_cache`` are left alone), recursively through nested mappings and
lists, have their values replaced by ``"[redacted]"``; so does any string value holding a URL with a password.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

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
        "x-jwt-assertion",
        "dpop",
    }
)

# A name is split into words (at separators and camelCase humps, lower-cased) and is secret when a word, or two
# neighbouring words, name a secret. Words, not substrings: "author", "passport", "compass", "shipping" and
# "public_key" are not secrets, "auth_token", "X-JWT-Assertion", "mfaCode" and "DATABASE_URL" are.
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_PARTS = re.compile(r"[^a-z0-9]+")
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "pw", "pass", "passphrase", "passcode", "pin",
        "secret", "secrets", "token", "tokens", "jwt", "jwe", "jws", "bearer", "dpop",
        "auth", "authorization", "credential", "credentials", "creds", "cookie", "cookies", "session", "sessionid",
        "csrf", "xsrf", "signature", "otp", "totp", "hotp", "dsn",
        "apikey", "privkey", "privatekey", "secretkey", "accesskey", "signingkey", "setcookie", "mfacode",
        "databaseurl", "subscriptionkey",
    }
)  # fmt: skip
# Glued spellings ("accesstoken", "clientsecret", "dbpassword", "oldpw", "newpwd", "dbpass"): a word ending in
# one of these, unless it is one of the English words below that merely end in "pass".
_SECRET_ENDINGS = (
    "token", "tokens", "secret", "password", "passwd", "pwd", "pw", "pass", "apikey", "privkey", "privatekey",
    "cookie", "subscriptionkey",
)  # fmt: skip
_NOT_GLUED = frozenset({"bypass", "compass", "encompass", "overpass", "underpass", "trespass", "surpass", "flypass"})
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"), ("private", "key"), ("priv", "key"), ("secret", "key"), ("access", "key"),
        ("signing", "key"), ("encryption", "key"), ("master", "key"), ("client", "key"),
        ("mfa", "code"), ("verification", "code"), ("recovery", "code"), ("backup", "code"),
        ("database", "url"), ("db", "url"), ("database", "uri"), ("db", "uri"), ("connection", "string"),
        ("set", "cookie"), ("session", "id"),
        ("subscription", "key"), ("client", "assertion"), ("saml", "assertion"), ("code", "verifier"),
    }
)  # fmt: skip
# Names that are a secret only on their own: OAuth's JWT-bearer grant sends the signed JWT as "assertion"
# (RFC 7523), while "assertion_count" holds nothing secret.
_SECRET_WHOLE_NAMES = frozenset({"assertion"})
# A URL with a password in it ("postgres://app:s3cret@db/app"), anywhere in a value, under any name. The user
# part has no ':' (the first one starts the password), so a search is linear in the value's length.
_URL_WITH_PASSWORD = re.compile(r"://[^/?#@\s:]*:[^/?#@\s]*@")
_CACHED_NAME = 64  # names up to this long are remembered (app-chosen names repeat on every problem document)

S = TypeVar("S", str, bytes)


def is_sensitive_key(name: str | bytes) -> bool:
    """True when a header name or mapping key names a secret (password, token, secret, cookie, ...).

    Example::

        >>> is_sensitive_key("new_password"), is_sensitive_key("email")
        (True, False)
    """
    text = name.decode("latin-1") if isinstance(name, bytes) else str(name)
    return _sensitive_name(text) if len(text) <= _CACHED_NAME else _names_secret(text)


@functools.lru_cache(maxsize=1024)
def _sensitive_name(text: str) -> bool:
    return _names_secret(text)


def _names_secret(text: str) -> bool:
    lowered = text.lower()
    # Words at camelCase humps, and each separator-delimited part whole (so "DPoP" is "dpop", not "d po p").
    return _secret_whole(lowered) or _secret_part(lowered) or _secret_words([w.lower() for w in _WORDS.findall(text)])


def _secret_whole(lowered: str) -> bool:
    return lowered in SENSITIVE_HEADERS or lowered in _SECRET_WHOLE_NAMES


def _secret_part(lowered: str) -> bool:
    return any(part in _SECRET_WORDS for part in _PARTS.split(lowered))


def _secret_words(words: list[str]) -> bool:
    """True when a word, or two neighbouring words, name a secret."""
    return any(_secret_word(word) for word in words) or any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _secret_word(word: str) -> bool:
    return word in _SECRET_WORDS or (word.endswith(_SECRET_ENDINGS) and word not in _NOT_GLUED)


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
        return _redact_items(value, depth)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, depth + 1) for v in value]
    return REDACTED if _holds_password_url(value) else value


def _redact_items(value: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    return {k: (REDACTED if is_sensitive_key(str(k)) else _redact_value(v, depth + 1)) for k, v in value.items()}


def _holds_password_url(value: object) -> bool:
    """True for a text holding a URL with a password: before its ``@``, or as a query option
    (``redis://db/0?password=...``, which redis-py reads as the password)."""
    if not isinstance(value, str):
        return False
    text = value.replace("\t", "").replace("\n", "").replace("\r", "")  # what a URL parser strips first
    if _URL_WITH_PASSWORD.search(text) is not None:
        return True
    return "://" in text and "password=" in unquote(text).lower()  # ?password=, ?pass%77ord=, ?ssl_password=


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with secret-looking keys' values redacted, through nested mappings and lists.

    Example::

        >>> redact_mapping({"email": "a@b.c", "password": "hunter2", "nested": {"api_key": "k"}})
        {'email': 'a@b.c', 'password': '[redacted]', 'nested': {'api_key': '[redacted]'}}
    """
    result: dict[str, Any] = _redact_value(data, 0)
    return result
