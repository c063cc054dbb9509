"""Edge cases random inputs rarely reach, pinned after the split of cors/, clientip/ and errors/ into modules.

Each case was checked to give the same answer before the split (f981809) and after it; they guard the places
where the split rewrote a rule rather than moved it: the regex dot scan (now a tokenizer), the preflight header
loop, the peer asked about once, the media type of a framework's page, the problem document's members.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from backend_guard.clientip import ClientIP
from backend_guard.cors import CORSPolicy, parse_origin
from backend_guard.errors import ErrorPolicy, problem_document, problem_response
from backend_guard.exceptions import ConfigurationError

# -- CORS: the regex dot scan ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "regex",
    [
        r"https://app\.example\.com.",  # a '.' last
        "https://app\\.example\\.com\n.",  # a '.' after a newline
        r"https://a\\.example\.com",  # an escaped backslash, then a bare '.'
        r"https://[^].]+\.example\.com",  # ']' right after '^' ends the class for the scan: the '.' is outside
        r"(?x) https://app\.example\.com  # .",  # a '.' in a verbose comment still counts
    ],
)
def test_regex_wild_dot_refused(regex: str) -> None:
    with pytest.raises(ConfigurationError, match="unescaped"):
        CORSPolicy(allow_origin_regex=regex)


@pytest.mark.parametrize(
    "regex",
    [
        r"https://[.]example\.com",  # a '.' in a class is literal
        r"https://[]a.]+\.example\.com",  # a ']' first in a class is literal: the '.' is still inside
        r"https://.{1,5}\.example\.com",  # a repeated '.' is a wildcard on purpose
        r"https://.+?\.example\.com",
    ],
)
def test_regex_dot_allowed(regex: str) -> None:
    CORSPolicy(allow_origin_regex=regex)  # past the dot scan (the reach check only warns without credentials)


# -- CORS: origins and preflights --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["https://example.com.", "https://user@example.com", b"https://b\xc3\xbccher.example", b"\xff", "https://[::1"],
)
def test_origin_refused(value: str | bytes) -> None:
    assert parse_origin(value) is None


def test_origin_port_spelling_normalised() -> None:
    policy = CORSPolicy(allow_origins=["https://example.com"])
    assert policy.match_origin("https://example.com:0443") == "https://example.com"
    assert policy.match_origin(b"HTTPS://EXAMPLE.COM:443") == "https://example.com"


def test_null_origin_answers() -> None:
    assert CORSPolicy(allow_origins=["*"]).match_origin(b"null") == "*"
    assert CORSPolicy(allow_origins=["null"]).match_origin("null") == "null"
    assert CORSPolicy(allow_origins=["https://example.com"]).match_origin("null") is None
    assert CORSPolicy(allow_origins=["null"]).match_origin("NULL") is None


def test_preflight_headers_once_each_and_a_late_refusal() -> None:
    policy = CORSPolicy(allow_origins=["https://example.com"], allow_headers=["x-request-id"])
    allowed, raw, _ = policy.preflight_raw(b"https://example.com", b"GET", b" , X-Request-Id,x-request-id, ,accept")
    assert allowed
    assert dict(raw)[b"access-control-allow-headers"] == b"x-request-id, accept"
    # An allowed name seen twice, then a refused one: still refused.
    assert policy.preflight_raw("https://example.com", "GET", "x-request-id, x-request-id, x-other")[2] == "headers"


def test_preflight_any_header_never_authorization() -> None:
    policy = CORSPolicy(allow_origins=["https://example.com"], allow_headers=["*"], allow_methods=["*"])
    assert policy.preflight_raw("https://example.com", "PROPFIND", "x-a, authorization")[2] == "headers"
    allowed, raw, _ = policy.preflight_raw("https://example.com", b"PROPFIND", "x-a")
    assert (allowed, dict(raw)[b"access-control-allow-methods"]) == (True, b"PROPFIND")
    assert policy.preflight_raw("https://example.com", "G ET", None)[2] == "method"


def test_pattern_over_customers_domain_refused_with_credentials() -> None:
    with pytest.raises(ConfigurationError, match="public suffixes lie under"):
        CORSPolicy(allow_origin_patterns=["https://*.amazonaws.com"], allow_credentials=True)
    with pytest.raises(ConfigurationError, match="is a public suffix"):
        CORSPolicy(allow_origin_patterns=["https://*.github.io"], allow_credentials=True)


def test_idna_deviation_refused() -> None:
    with pytest.raises(ConfigurationError, match="xn--"):
        CORSPolicy(allow_origins=["https://faß.de"])


# -- ClientIP: whom to believe -----------------------------------------------------------------------------


class _Untouchable:
    """Headers no resolver may read (the peer is not a trusted proxy)."""

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("the headers of an untrusted peer were read")


class _Environ(dict[str, Any]):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def test_untrusted_peer_headers_never_read() -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_fields=["for", "proto", "host"])
    scope = {"type": "http", "scheme": "http", "client": ("203.0.113.9", 1), "headers": _Untouchable()}
    resolved = cip.resolve_scope(scope)
    assert (resolved.address, resolved.scheme, resolved.host, resolved.proxied) == ("203.0.113.9", "http", None, False)
    environ = _Environ({"REMOTE_ADDR": "203.0.113.9", "HTTP_HOST": "h", "HTTP_X_FORWARDED_FOR": "1.2.3.4"})
    resolved = cip.resolve_environ(environ)
    assert (resolved.address, resolved.host, resolved.proxied) == ("203.0.113.9", "h", False)
    assert not [key for key in environ.read if key.startswith("HTTP_X_")]


def test_forwarded_quoted_ipv6_with_port() -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header="forwarded", forwarded_fields=["for", "proto", "host"])
    headers = {"forwarded": 'for="[2001:DB8::1]:4711";proto=https;host=api.example.com, for=10.0.0.9'}
    resolved = cip.resolve("::ffff:10.0.0.5", headers)
    assert (resolved.address, resolved.scheme, resolved.host) == ("2001:db8::1", "https", "api.example.com")


def test_forwarded_obfuscated_hop_keeps_the_reporting_proxy() -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header="forwarded")
    assert cip.resolve("10.0.0.5", {"forwarded": "for=1.2.3.4, for=_hidden;proto=https, for=10.0.0.9"}).address == (
        "10.0.0.9"
    )


def test_unix_peer_scheme_only_keeps_client_unknown() -> None:
    cip = ClientIP(["unix"])
    scope: dict[str, Any] = {"type": "websocket", "scheme": "ws", "client": None}
    scope["headers"] = [(b"x-forwarded-proto", b"https"), (b"host", b"a.example")]
    resolved = cip.apply_scope(scope)
    assert (resolved.address, resolved.scheme, resolved.proxied) == ("", "wss", True)
    assert (scope["client"], scope["scheme"]) == (None, "wss")


def test_recorded_result_survives_a_rewritten_scope() -> None:
    cip = ClientIP(["10.0.0.0/8"])
    scope: dict[str, Any] = {"type": "http", "scheme": "http", "client": ("10.0.0.5", 1)}
    scope["headers"] = [(b"x-forwarded-for", b"198.51.100.2"), (b"x-forwarded-for", b"10.0.0.9")]
    first = cip.apply_scope(scope)
    assert first.address == "198.51.100.2"  # several lines joined: 10.0.0.9 is a trusted hop, walked past
    scope["client"] = ("203.0.113.1", 2)
    scope["headers"] = [(b"x-forwarded-for", b"6.6.6.6")]
    assert cip.apply_scope(scope) is first
    assert cip.resolve_scope(scope) is first


# -- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "accept", "expected"),
    [
        ("TEXT/HTML ; charset=utf-8", "application/json", True),
        (" text/plain", None, True),
        (None, "*/*", True),
        ("text/htmlx", None, False),
        ("application/json", None, False),
        ("text/html", "text/html,application/xhtml+xml", False),
        ("text/html", "text/html, application/json", True),
    ],
)
def test_wants_rewrite_media_type(content_type: str | None, accept: str | None, expected: bool) -> None:
    assert ErrorPolicy().wants_rewrite(404, content_type, accept) is expected
    assert ErrorPolicy().wants_rewrite(399, content_type, accept) is False
    assert ErrorPolicy(rewrite_plain_errors="never").wants_rewrite(500, content_type, accept) is False


def test_500_never_shows_the_exception() -> None:
    status, _headers, body = problem_response(RuntimeError("password=hunter2 at /srv/app.py"), request_id="r1")
    doc = json.loads(body)
    assert (status, doc["detail"]) == (500, "The server could not complete the request.")
    assert "hunter2" not in body.decode()
    assert "traceback" not in doc


def test_broken_renderer_gives_the_minimal_500() -> None:
    status, headers, body = problem_response(404, format=lambda doc: {"x": 1 / 0})
    assert (status, json.loads(body)["code"]) == (500, "internal-error")
    assert ("cache-control", "no-store") in headers


def test_document_members_guarded() -> None:
    extensions = {"status": 200, "type": "t", "title": "x", "api_key": "k", "dsn": "postgres://u:p@h/db", "n": 1}
    doc = problem_document(404, detail="", request_id="", instance="", extensions=extensions)
    assert (doc["status"], doc["type"], doc["title"]) == (404, "about:blank", "Not Found")
    assert (doc["api_key"], doc["dsn"], doc["n"]) == ("[redacted]", "[redacted]", 1)
    assert not {"detail", "request_id", "instance"} & set(doc)
