"""The sans-IO CORS core: origin parsing, structural matching, refused settings, preflight/actual decisions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_guard.cors import CORSDecision, CORSPolicy, Origin, cors_headers, parse_origin
from backend_guard.exceptions import ConfigurationError

EXACT = CORSPolicy(allow_origins=["https://example.com"])
EXACT_CRED = CORSPolicy(allow_origins=["https://example.com", "https://app.example.com"], allow_credentials=True)
PATTERN = CORSPolicy(allow_origin_patterns=["https://*.example.com"])
REGEX = CORSPolicy(allow_origin_regex=r"https://[a-z0-9-]+\.example\.com")
MIXED = CORSPolicy(
    allow_origins=["https://example.com"],
    allow_origin_patterns=["https://*.example.com"],
    allow_credentials=True,
)
POLICIES = [EXACT, EXACT_CRED, PATTERN, REGEX, MIXED]

# Classes of origin-validation bypasses (PortSwigger "CORS vulnerabilities" and their research on URL
# validation bypasses): reflection, prefix/suffix/substring mistakes, null, scheme and port changes, userinfo,
# paths, special characters some browsers put in hosts, whitespace and header injection, homographs, sizes.
HOSTILE = [
    "https://evil.net",
    "https://example.com.evil.net",
    "https://evil-example.com",
    "https://evilexample.com",
    "https://notexample.com",
    "https://example.comevil.net",
    "https://example.co",
    "https://example.com.",
    "https://sub.example.com.evil.net",
    "null",
    "NULL",
    "http://example.com",
    "http://app.example.com",
    "ws://example.com",
    "https://example.com:8443",
    "https://app.example.com:8443",
    "https://example.com@evil.net",
    "https://user:pass@example.com",
    "https://example.com/.evil.net",
    "https://example.com/",
    "https://example.com?x=1",
    "https://example.com#frag",
    "https://example.com_.evil.net",
    "https://example.com%60.evil.net",
    "https://example.com`.evil.net",
    "https://example.com}.evil.net",
    "https://example.com!.evil.net",
    "https://example.com&.evil.net",
    "https://example.com'.evil.net",
    "https://example.com\\.evil.net",
    "https://example.com\r\nX-Injected: 1",
    " https://example.com",
    "https://example.com ",
    "https://example.com\t",
    "https://example.com\x00",
    "https://ex\u0430mple.com",  # a Cyrillic letter a
    "https://xn--exmple-4nf.com",  # the homograph's IDNA form: another host
    "https://example.com, https://evil.net",
    "https://example.com https://evil.net",
    "",
    "*",
    "https://",
    "https://*.example.com",
    "https://.example.com",
    "https://..example.com",
    "example.com",
    "//example.com",
    "file://example.com",
    "javascript:alert(1)//example.com",
    "data:text/html,example.com",
    "https://" + "a" * 10_000 + ".example.com",
    "https://127.0.0.1",
    "https://[::1]",
    "https://example.com:0",
    "https://example.com:99999",
    "https://example.com:-1",
    "https://example.com:",
]


@pytest.mark.parametrize("policy", POLICIES, ids=["exact", "exact-cred", "pattern", "regex", "mixed"])
@pytest.mark.parametrize("origin", HOSTILE)
def test_hostile_origins_are_refused(policy: CORSPolicy, origin: str) -> None:
    assert policy.match_origin(origin) is None
    assert policy.actual(origin).headers == ()
    raw = origin.encode("utf-8")
    assert policy.actual_raw(raw) == ()
    d = policy.preflight(origin, "GET")
    assert (d.allowed, d.status, d.headers) == (False, 403, ())


@pytest.mark.parametrize(
    ("policy", "origin", "expected"),
    [
        (EXACT, "https://example.com", "https://example.com"),
        (EXACT, "https://example.com:443", "https://example.com"),
        (EXACT, "HTTPS://EXAMPLE.COM", "https://example.com"),
        (EXACT_CRED, "https://app.example.com", "https://app.example.com"),
        (PATTERN, "https://a.example.com", "https://a.example.com"),
        (PATTERN, "https://a.b.example.com", "https://a.b.example.com"),
        (REGEX, "https://a-1.example.com", "https://a-1.example.com"),
        (MIXED, "https://example.com", "https://example.com"),
        (MIXED, "https://x.example.com", "https://x.example.com"),
    ],
)
def test_allowed_origins(policy: CORSPolicy, origin: str, expected: str) -> None:
    assert policy.match_origin(origin) == expected
    assert policy.is_allowed_origin(origin)


def test_pattern_never_admits_the_bare_domain() -> None:
    assert not PATTERN.is_allowed_origin("https://example.com")
    assert not REGEX.is_allowed_origin("https://example.com")
    assert not REGEX.is_allowed_origin("https://a.b.example.com")  # the regex says one label


def test_parse_origin_normalises() -> None:
    assert parse_origin("HTTPS://Example.COM:443") == Origin("https", "example.com", 443)
    assert parse_origin("http://example.com") == Origin("http", "example.com", 80)
    assert parse_origin("http://example.com:80") == parse_origin("http://example.com")
    assert parse_origin("http://[0:0::1]:8080") == Origin("http", "[::1]", 8080)
    assert parse_origin(b"https://a.example") == Origin("https", "a.example", 443)
    assert parse_origin("chrome-extension://abcdef") == Origin("chrome-extension", "abcdef", None)
    assert Origin("chrome-extension", "abcdef", None).serialize() == "chrome-extension://abcdef"
    assert Origin("https", "a.example", 8443).serialize() == "https://a.example:8443"
    assert parse_origin(b"https://\xff.example") is None
    assert parse_origin("http://[zz::1]") is None


def test_configured_idna_host_matches_its_ascii_form() -> None:
    policy = CORSPolicy(allow_origins=["https://Bücher.example"])
    assert policy.match_origin("https://xn--bcher-kva.example") == "https://xn--bcher-kva.example"
    assert not policy.is_allowed_origin("https://bücher.example")  # browsers never send Unicode hosts


def test_port_wildcard_pattern_for_local_development() -> None:
    policy = CORSPolicy(allow_origin_patterns=["http://*.localhost:*"])
    assert policy.is_allowed_origin("http://app.localhost:5173")
    assert policy.is_allowed_origin("http://app.localhost")
    assert not policy.is_allowed_origin("https://app.localhost:5173")
    assert not policy.is_allowed_origin("http://localhost:5173")


def test_star_allows_any_valid_origin_but_not_garbage() -> None:
    policy = CORSPolicy(allow_origins=["*"])
    assert policy.match_origin("https://anything.example") == "*"
    assert policy.match_origin("null") == "*"
    assert policy.match_origin("garbage") is None
    assert policy.actual("https://a.example").headers == (("Access-Control-Allow-Origin", "*"),)


def test_null_only_when_listed_on_purpose() -> None:
    assert not EXACT.is_allowed_origin("null")
    policy = CORSPolicy(allow_origins=["null"])
    assert policy.match_origin("null") == "null"
    assert not policy.is_allowed_origin("NULL")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"allow_origins": ["*"], "allow_credentials": True}, "credentials"),
        ({"allow_origins": ["null"], "allow_credentials": True}, "null"),
        ({"allow_origins": ["https://example.com/"]}, "path"),
        ({"allow_origins": ["https://example.com/api"]}, "path"),
        ({"allow_origins": ["https://example.com?x"]}, "query"),
        ({"allow_origins": ["https://example.com#x"]}, "fragment"),
        ({"allow_origins": ["https://user@example.com"]}, "userinfo"),
        ({"allow_origins": ["example.com"]}, "no scheme"),
        ({"allow_origins": ["//example.com"]}, "no scheme"),
        ({"allow_origins": ["https://exa mple.com"]}, "not a valid"),
        ({"allow_origins": ["https://example.com:99999"]}, "not a valid"),
        ({"allow_origins": ["https://[::1"]}, "not a valid"),
        ({"allow_origins": ["https://::1]"]}, "not a valid"),
        ({"allow_origins": "https://example.com"}, "allow_origins must be a list"),
        ({"allow_origins": ["*", "https://example.com"]}, "already"),
        ({"allow_origin_patterns": ["https://*.com"]}, "top-level"),
        ({"allow_origin_patterns": ["https://a.*.example.com"]}, "leading"),
        ({"allow_origin_patterns": ["*.example.com"]}, "scheme"),
        ({"allow_origin_patterns": ["https://*.example.com/x"]}, "path"),
        ({"allow_origin_regex": r"https://app.?example\.com"}, "unescaped"),
        ({"allow_origin_regex": r"https://app.example\.com"}, "unescaped"),
        ({"allow_origin_regex": r"https://(a"}, "compile"),
        ({"expose_headers": ["*"], "allow_credentials": True}, "literally"),
        ({"allow_headers": ["bad header"]}, "valid name"),
        ({"allow_methods": "GET"}, "list"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"allow_credentials": "yes"}, "True or False"),
        ({"paths": ["api"]}, "start with"),
        ({"preflight_status": 400}, "200 or 204"),
    ],
)
def test_unsafe_or_invalid_settings_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        CORSPolicy(**kwargs)  # type: ignore[arg-type]


def test_regex_accepts_escaped_dots_and_classes() -> None:
    policy = CORSPolicy(allow_origin_regex=r"https://[a-z.]+\.example\.com|https://[]a]\.example\.com")
    assert policy.is_allowed_origin("https://a.b.example.com")
    assert policy.is_allowed_origin("https://].example.com") is False  # not a valid origin anyway


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        EXACT.allow_credentials = True
    with pytest.raises(AttributeError):
        del EXACT.max_age
    assert "https://example.com" in repr(EXACT)


# -- preflight --------------------------------------------------------------------------------------------

API = CORSPolicy(
    allow_origins=["https://app.example.com"],
    allow_methods=["GET", "PUT", "delete"],
    allow_headers=["Authorization", "X-Request-Id"],
    expose_headers=["X-Request-Id"],
    allow_credentials=True,
    max_age=300,
)


def test_allowed_preflight_headers() -> None:
    d = API.preflight("https://app.example.com", "PUT", "x-request-id,authorization,Content-Type")
    assert (d.allowed, d.preflight, d.status, d.reason) == (True, True, 204, None)
    h = dict(d.headers)
    assert h == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, PUT, DELETE",
        "Access-Control-Allow-Headers": "x-request-id, authorization, content-type",
        "Access-Control-Max-Age": "300",
    }
    assert d.vary == ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")


def test_preflight_echoes_only_requested_headers() -> None:
    d = API.preflight("https://app.example.com", "GET", "x-request-id")
    assert dict(d.headers)["Access-Control-Allow-Headers"] == "x-request-id"
    d = API.preflight("https://app.example.com", "GET", None)
    assert "Access-Control-Allow-Headers" not in dict(d.headers)


@pytest.mark.parametrize(
    ("origin", "method", "headers", "reason"),
    [
        ("https://evil.example", "GET", None, "origin"),
        ("https://app.example.com", "PATCH", None, "method"),
        ("https://app.example.com", "put", None, "method"),  # methods are case-sensitive in Fetch
        ("https://app.example.com", "", None, "method"),
        ("https://app.example.com", "GE T", None, "method"),
        ("https://app.example.com", "GET", "x-other", "headers"),
        ("https://app.example.com", "GET", "x-request-id, bad header", "headers"),
        ("https://app.example.com", "GET", "x" * 5000, "headers"),
        (None, "GET", None, "origin"),
    ],
)
def test_refused_preflight_has_no_access_control_headers(
    origin: str | None, method: str, headers: str | None, reason: str
) -> None:
    d = API.preflight(origin, method, headers)
    assert (d.allowed, d.status, d.headers, d.reason) == (False, 403, (), reason)
    assert "Origin" in d.vary


def test_safelisted_methods_always_pass_preflight() -> None:
    policy = CORSPolicy(allow_origins=["https://a.example"], allow_methods=["GET"])
    assert policy.preflight("https://a.example", "POST").allowed


def test_any_method_and_any_header() -> None:
    policy = CORSPolicy(allow_origins=["https://a.example"], allow_methods=["*"], allow_headers=["*"])
    d = policy.preflight("https://a.example", "PURGE", "x-a, x-b")
    assert d.allowed
    assert dict(d.headers)["Access-Control-Allow-Methods"] == "PURGE"
    assert dict(d.headers)["Access-Control-Allow-Headers"] == "x-a, x-b"
    # '*' never covers Authorization (as in Fetch): it must be listed
    assert policy.preflight("https://a.example", "GET", "authorization").reason == "headers"


def test_private_network_only_when_enabled_and_requested() -> None:
    off = CORSPolicy(allow_origins=["https://a.example"])
    on = CORSPolicy(allow_origins=["https://a.example"], allow_private_network=True)
    name = "Access-Control-Allow-Private-Network"
    assert name not in dict(off.preflight("https://a.example", "GET", private_network=True).headers)
    assert name not in dict(on.preflight("https://a.example", "GET", private_network=False).headers)
    assert dict(on.preflight("https://a.example", "GET", private_network=True).headers)[name] == "true"
    assert "Access-Control-Request-Private-Network" in on.preflight_vary()


def test_star_preflight_without_credentials() -> None:
    policy = CORSPolicy(allow_origins=["*"], preflight_status=200)
    d = policy.preflight("https://a.example", "GET")
    assert dict(d.headers)["Access-Control-Allow-Origin"] == "*"
    assert d.status == 200


# -- actual responses ------------------------------------------------------------------------------------


def test_actual_response_headers() -> None:
    d = API.actual("https://app.example.com")
    assert d == CORSDecision(
        allowed=True,
        preflight=False,
        headers=(
            ("Access-Control-Allow-Origin", "https://app.example.com"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Expose-Headers", "X-Request-Id"),
        ),
        vary=("Origin",),
    )
    refused = API.actual("https://evil.example")
    assert (refused.allowed, refused.headers, refused.vary) == (False, (), ("Origin",))
    assert API.actual(None).vary == ("Origin",)


def test_actual_raw_cache_is_bounded() -> None:
    policy = CORSPolicy(allow_origin_patterns=["https://*.example.com"])
    for i in range(3000):
        assert policy.actual_raw(f"https://h{i}.example.com".encode())
    assert len(policy._actual_cache) <= 1024
    assert policy.actual_raw(b"https://h1.example.com") == policy.actual_raw(b"https://h1.example.com")


def test_cors_headers_helper() -> None:
    pre = cors_headers(
        API,
        "OPTIONS",
        "https://app.example.com",
        {"Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"},
    )
    assert (pre.preflight, pre.allowed, pre.status) == (True, True, 204)
    pna = cors_headers(
        CORSPolicy(allow_origins=["https://a.example"], allow_private_network=True),
        "OPTIONS",
        "https://a.example",
        [("access-control-request-method", "GET"), ("access-control-request-private-network", "true")],
    )
    assert ("Access-Control-Allow-Private-Network", "true") in pna.headers
    actual = cors_headers(API, "OPTIONS", "https://app.example.com", {})
    assert (actual.preflight, actual.allowed) == (False, True)
    assert cors_headers(API, "GET", None).headers == ()


def test_paths_prefixes_and_patterns() -> None:
    policy = CORSPolicy(allow_origins=["https://a.example"], paths=["/api/", "/v*/public/**", "/exact"])
    assert policy.applies_to("/api")
    assert policy.applies_to("/api/users")
    assert not policy.applies_to("/apix")
    assert policy.applies_to("/v2/public/a/b")
    assert not policy.applies_to("/v2/x/public/a")
    assert policy.applies_to("/exact")
    assert not policy.applies_to("/exactly")
    assert CORSPolicy(paths=["/"]).applies_to("/anything")
    assert EXACT.applies_to("/anything")


# -- properties ---------------------------------------------------------------------------------------------

LABELS = ["example", "com", "evil", "a", "net", "examplecom", "example-com", "xn--e1a", "1"]
SCHEMES = ["http", "https", "ws", "wss"]


def _structural_oracle(scheme: str, host: str, port: int | None) -> bool:
    """MIXED's rule in plain terms: https, port 443, host example.com or a subdomain of it."""
    effective = port if port is not None else {"http": 80, "https": 443, "ws": 80, "wss": 443}[scheme]
    if scheme != "https" or effective != 443:
        return False
    return host == "example.com" or host.endswith(".example.com")


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(SCHEMES),
    labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=4),
    port=st.one_of(st.none(), st.sampled_from([80, 443, 8443, 8000])),
    upper=st.booleans(),
)
def test_generated_origins_allowed_exactly_by_the_structural_rule(
    scheme: str, labels: list[str], port: int | None, upper: bool
) -> None:
    host = ".".join(labels)
    text = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    if upper:
        text = text.upper()
    expected = _structural_oracle(scheme, host, port)
    assert MIXED.is_allowed_origin(text) is expected
    assert (MIXED.actual_raw(text.encode()) != ()) is expected
    if expected:
        assert MIXED.match_origin(text) == f"https://{host}"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80) | st.binary(max_size=80))
def test_arbitrary_input_never_raises_and_never_allows_non_origins(value: str | bytes) -> None:
    for policy in (*POLICIES, CORSPolicy(allow_origins=["*"])):
        result = policy.match_origin(value)
        if result is not None and result != "*":
            assert parse_origin(result) is not None
            assert parse_origin(value) is not None
    d = MIXED.preflight(value if isinstance(value, str) else None, "GET", value if isinstance(value, str) else None)
    assert d.status in (204, 403)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["https://", "https://example.com", "https://a.example.com"]),
    junk=st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=12),
)
def test_appending_anything_never_keeps_the_match_unless_it_is_a_port_or_subdomain(prefix: str, junk: str) -> None:
    text = prefix + junk
    if MIXED.is_allowed_origin(text):
        parsed = parse_origin(text)
        assert parsed is not None
        assert _structural_oracle(parsed.scheme, parsed.host, parsed.port)
