"""Fuzz targets: each takes raw bytes and drives one parser; only documented, typed errors may escape.

Invariants checked beyond "no crash": resolved client addresses are real addresses; a parsed origin
re-serialises to something that parses to itself; hash parsing never raises; a parsed rate is positive; a
token verification raises only InvalidToken; an accepted request id is the incoming one and header-safe; a
CSP or Permissions-Policy that parses renders a header value that parses to the same policy.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

from backend_guard.clientip import ClientIP
from backend_guard.exceptions import ConfigurationError, GuardError

_CIPS = tuple(
    ClientIP(["10.0.0.0/8", "::1"], forwarded_header=family, forwarded_fields=("for", "proto", "host"))
    for family in ("x-forwarded-for", "forwarded")
)


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def forwarding(data: bytes) -> None:
    text = _text(data)
    half = len(text) // 2
    headers = {
        "x-forwarded-for": text[:half],
        "forwarded": text[half:],
        "x-forwarded-proto": text[::2],
        "x-forwarded-host": text[1::2],
    }
    for cip in _CIPS:
        ipaddress.ip_address(cip.resolve("10.0.0.1", headers).address)


def origin(data: bytes) -> None:
    from backend_guard.cors import CORSPolicy, parse_origin

    parsed = parse_origin(data)
    if parsed is not None:
        assert parse_origin(parsed.serialize()) == parsed  # serialising is the inverse of parsing
    policy = CORSPolicy(allow_origins=["https://example.com"], allow_origin_patterns=["https://*.example.com"])
    value = _text(data)
    if policy.is_allowed_origin(value):
        host = value.split("://", 1)[-1].split(":", 1)[0].lower()
        assert host == "example.com" or host.endswith(".example.com"), value


def stored_hash(data: bytes) -> None:
    from backend_guard.passwords._schemes import parse_hash

    parse_hash(_text(data))
    parse_hash(data.decode("utf-8", "replace"))


def csp(data: bytes) -> None:
    from backend_guard.headers import ContentSecurityPolicy

    text = _text(data)
    with contextlib.suppress(ConfigurationError):
        ContentSecurityPolicy({"default-src": [text]})


def rate_string(data: bytes) -> None:
    from backend_guard.ratelimit import parse_limits

    try:
        rates = parse_limits([_text(data)])
    except ConfigurationError:
        return
    for rate in rates:
        assert rate.amount >= 1, rate
        assert rate.window > 0, rate


_TOKENS: list[object] = []


def _token_manager() -> object:
    if not _TOKENS:
        from backend_guard.storage import MemoryStore
        from backend_guard.tokens import TokenManager

        tm = TokenManager(b"k" * 32, "HS256", issuer="https://auth.example", audience="api", store=MemoryStore())
        _TOKENS.append(tm)
        _TOKENS.append(tm.issue("fuzz").access_token)
    return _TOKENS[0]


def token(data: bytes) -> None:
    from backend_guard.exceptions import InvalidToken
    from backend_guard.tokens import TokenManager

    tm = _token_manager()
    assert isinstance(tm, TokenManager)
    good = str(_TOKENS[1])
    # Raw bytes, and the bytes spliced into a real token's header, payload or signature.
    head, body, sig = good.split(".")
    text = _text(data)
    for candidate in (data, f"{text}.{body}.{sig}", f"{head}.{text}.{sig}", f"{head}.{body}.{text}"):
        try:
            claims = tm.verify_access(candidate)
        except InvalidToken:
            continue
        assert claims["sub"] == "fuzz", claims  # only the genuine token (or an equivalent encoding of it) passes


def request_id(data: bytes) -> None:
    from backend_guard._logging import RequestIdPolicy, is_valid_request_id

    policy = RequestIdPolicy(trust_incoming=True)
    chosen = policy.choose(data)
    assert is_valid_request_id(chosen), chosen
    assert chosen.isascii()
    assert "\r" not in chosen
    assert "\n" not in chosen
    if is_valid_request_id(data):
        assert chosen == data.decode("ascii")


def csp_parse(data: bytes) -> None:
    from backend_guard.headers import ContentSecurityPolicy

    try:
        policy = ContentSecurityPolicy.parse(_text(data), allow_missing_default_src=True)
    except ConfigurationError:
        return
    value = policy.header_value()
    assert "\r" not in value
    assert "\n" not in value
    again = ContentSecurityPolicy.parse(value, allow_missing_default_src=True)
    assert again.directives == policy.directives


def permissions_policy(data: bytes) -> None:
    from backend_guard.headers import PermissionsPolicy

    features: dict[str, list[str]] = {}
    for item in _text(data).split(","):
        name, _, allow = item.partition("=")
        features.setdefault(name, []).extend(allow.split())
    try:
        policy = PermissionsPolicy(features)
    except ConfigurationError:
        return
    value = policy.header_value()
    assert "\r" not in value, value
    assert "\n" not in value, value


TARGETS: dict[str, Callable[[bytes], None]] = {
    "forwarding": forwarding,
    "origin": origin,
    "stored_hash": stored_hash,
    "csp": csp,
    "csp_parse": csp_parse,
    "permissions_policy": permissions_policy,
    "rate_string": rate_string,
    "request_id": request_id,
    "token": token,
}

EXPECTED = (GuardError,)
