"""Fuzz targets: each takes raw bytes and drives one parser; only documented, typed errors may escape.

Invariants checked beyond "no crash": resolved client addresses are real addresses; a parsed origin
re-serialises to something that parses to itself; hash parsing never raises.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

from backend_guard.clientip import ClientIP
from backend_guard.exceptions import ConfigurationError, GuardError

_CIP = ClientIP(["10.0.0.0/8", "::1"], forwarded_header="any")


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def forwarding(data: bytes) -> None:
    text = _text(data)
    half = len(text) // 2
    headers = {"x-forwarded-for": text[:half], "forwarded": text[half:], "x-forwarded-proto": text[::2]}
    resolved = _CIP.resolve("10.0.0.1", headers)
    ipaddress.ip_address(resolved.address)


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
    from backend_guard._password_schemes import parse_hash

    parse_hash(_text(data))
    parse_hash(data.decode("utf-8", "replace"))


def csp(data: bytes) -> None:
    from backend_guard.headers import ContentSecurityPolicy

    text = _text(data)
    with contextlib.suppress(ConfigurationError):
        ContentSecurityPolicy({"default-src": [text]})


TARGETS: dict[str, Callable[[bytes], None]] = {
    "forwarding": forwarding,
    "origin": origin,
    "stored_hash": stored_hash,
    "csp": csp,
}

EXPECTED = (GuardError,)
