"""CrossOriginProtection, the sans-IO policy: every rule of the decision table, and hypothesis over header
combinations (methods, Sec-Fetch-Site values with junk and duplicates, Origins with ``null``, odd ports, IDNA,
huge values) against an independent model of the table; never an exception."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard.csrf import CrossOriginDecision, csrf_exempt, is_csrf_exempt

OWN = {"scheme": "https", "host": "app.example.com"}
UNSAFE = ["POST", "PUT", "PATCH", "DELETE", "PROPFIND", "get", "post", ""]


def check(
    policy: bg.CrossOriginProtection,
    method: str = "POST",
    sites: Sequence[str | bytes] = (),
    origins: Sequence[str | bytes] = (),
    scheme: str = "https",
    host: str = "app.example.com",
) -> CrossOriginDecision:
    return policy.check(method, scheme=scheme, host=host, sec_fetch_site=sites, origin=origins)


POLICY = bg.CrossOriginProtection()


# --- safe methods -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_always_pass(method: str) -> None:
    for sites, origins in [(["cross-site"], ["https://evil.example"]), (["junk", "x"], ["null", "a"]), ([], ["!"])]:
        decision = check(POLICY, method, sites, origins)
        assert decision.allowed
        assert decision.rule == "safe-method"
        assert decision.code is None


def test_method_names_are_case_sensitive_so_lower_case_get_is_unsafe() -> None:
    assert not check(POLICY, "get", ["cross-site"]).allowed


# --- Sec-Fetch-Site ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("value", ["same-origin", "none", b"same-origin", b"none", " Same-Origin "])
def test_fetch_same_origin_and_none_pass(method: str, value: str | bytes) -> None:
    decision = check(POLICY, method, [value], ["https://evil.example"])  # Sec-Fetch-Site is believed over Origin
    assert decision.allowed
    assert decision.rule == "fetch-same-origin"


@pytest.mark.parametrize("value", ["cross-site", b"cross-site", "CROSS-SITE"])
def test_fetch_cross_site_is_refused_with_the_stable_code(value: str | bytes) -> None:
    decision = check(POLICY, "POST", [value], ["https://evil.example"])
    assert (decision.allowed, decision.status, decision.code, decision.rule) == (
        False,
        403,
        "cross-origin-request",
        "fetch-cross-site",
    )
    assert decision.reason


def test_fetch_same_site_is_refused_unless_allowed() -> None:
    assert check(POLICY, "POST", ["same-site"]).rule == "fetch-same-site"
    relaxed = bg.CrossOriginProtection(allow_same_site=True)
    assert check(relaxed, "POST", ["same-site"]).allowed
    assert not check(relaxed, "POST", ["cross-site"]).allowed


@pytest.mark.parametrize(
    "values",
    [["same-origin", "cross-site"], ["same-origin, cross-site"], [b"none", b"same-site"], ["none", "same-origin"]],
)
def test_two_different_fetch_site_values_are_refused(values: list[str | bytes]) -> None:
    assert check(POLICY, "POST", values).rule == "fetch-conflict"


def test_the_same_fetch_site_value_twice_counts_once() -> None:
    assert check(POLICY, "POST", ["same-origin", "same-origin"]).allowed
    assert check(POLICY, "POST", ["cross-site", b"cross-site"]).rule == "fetch-cross-site"


@pytest.mark.parametrize("value", ["", " ", ",", "same_origin", "sameorigin", "x" * 10_000, "same-origin\x00", b"\xff"])
def test_junk_fetch_site_values_are_refused(value: str | bytes) -> None:
    assert check(POLICY, "POST", [value]).rule == "fetch-unknown"


def test_a_trusted_origin_passes_a_cross_site_or_same_site_request() -> None:
    policy = bg.CrossOriginProtection(trusted_origins=["https://admin.example.net", "https://*.example.org"])
    assert check(policy, "POST", ["cross-site"], ["https://admin.example.net"]).rule == "trusted-origin"
    assert check(policy, "POST", ["same-site"], ["https://a.b.example.org"]).rule == "trusted-origin"
    assert check(policy, "POST", ["cross-site"], ["https://admin.example.net:8443"]).rule == "fetch-cross-site"
    assert check(policy, "POST", ["cross-site"], ["http://admin.example.net"]).rule == "fetch-cross-site"
    assert check(policy, "POST", ["cross-site"], ["https://example.org"]).rule == "fetch-cross-site"
    # two Origins, even trusted ones, are never trusted
    assert not check(policy, "POST", ["cross-site"], ["https://admin.example.net"] * 2).allowed


# --- Origin without Fetch Metadata ------------------------------------------------------------------------------


def test_neither_header_passes_non_browser_clients() -> None:
    assert check(POLICY, "DELETE").rule == "no-browser-headers"


@pytest.mark.parametrize(
    ("origin", "scheme", "host"),
    [
        ("https://app.example.com", "https", "app.example.com"),
        ("https://app.example.com", "https", "app.example.com:443"),
        ("https://app.example.com:443", "https", "app.example.com"),
        ("HTTPS://APP.example.COM", "https", "App.Example.com"),
        ("http://127.0.0.1:8000", "http", "127.0.0.1:8000"),
        ("http://[::1]:8000", "http", "[0:0::1]:8000"),
        (b"http://localhost", "http", "localhost:80"),
        ("https://xn--bcher-kva.example", "https", "xn--bcher-kva.example"),
    ],
)
def test_origin_equal_to_the_request_own_origin_passes(origin: str | bytes, scheme: str, host: str) -> None:
    assert check(POLICY, "POST", [], [origin], scheme, host).rule == "origin-same"


@pytest.mark.parametrize(
    ("origin", "scheme", "host"),
    [
        ("https://evil.example", "https", "app.example.com"),
        ("http://app.example.com", "https", "app.example.com"),  # scheme differs (a plain-HTTP page)
        ("https://app.example.com:8443", "https", "app.example.com"),  # port differs
        ("https://app.example.com", "http", "app.example.com"),
        ("https://api.example.com", "https", "app.example.com"),  # same site, other origin
        ("https://app.example.com.evil.net", "https", "app.example.com"),
    ],
)
def test_origin_of_another_origin_is_refused(origin: str, scheme: str, host: str) -> None:
    assert check(POLICY, "POST", [], [origin], scheme, host).rule == "origin-mismatch"


def test_origin_null_is_refused_unless_opted_in() -> None:
    assert check(POLICY, "POST", [], ["null"]).rule == "origin-null"
    assert check(POLICY, "POST", [], [b"null"]).rule == "origin-null"
    opted = bg.CrossOriginProtection(allow_null_origin=True)
    assert check(opted, "POST", [], ["null"]).rule == "origin-null-allowed"
    assert not check(opted, "POST", ["cross-site"], ["null"]).allowed  # Fetch Metadata still decides first


@pytest.mark.parametrize(
    "origin",
    ["", "app.example.com", "https://app.example.com/", "https://user@app.example.com", "https://bücher.example",
     "https://app.example.com:99999", " https://app.example.com", "x" * 100_000, b"\xff\xfe", "Null"],
)  # fmt: skip
def test_a_malformed_origin_is_refused(origin: str | bytes) -> None:
    assert check(POLICY, "POST", [], [origin]).rule == "origin-malformed"


def test_several_origins_are_refused_even_when_equal() -> None:
    own = "https://app.example.com"
    assert check(POLICY, "POST", [], [own, own]).rule == "origin-duplicate"
    assert check(POLICY, "POST", [], [own, "https://evil.example"]).rule == "origin-duplicate"


@pytest.mark.parametrize("host", ["", "app.example.com/evil", "evil@app.example.com", "a b", "x" * 1000, "[::1"])
def test_an_origin_against_an_invalid_host_is_refused(host: str) -> None:
    assert check(POLICY, "POST", [], ["https://app.example.com"], "https", host).rule == "host-malformed"


def test_a_trusted_origin_passes_without_fetch_metadata() -> None:
    policy = bg.CrossOriginProtection(trusted_origins=["https://admin.example.net"])
    assert check(policy, "POST", [], ["https://admin.example.net"]).rule == "trusted-origin"
    assert check(policy, "POST", [], ["https://admin.example.net"], host="").rule == "trusted-origin"


# --- WebSocket handshakes ---------------------------------------------------------------------------------------


def test_a_websocket_handshake_is_judged_as_an_unsafe_method() -> None:
    def ws(scheme: str, sites: Sequence[str] = (), origins: Sequence[str] = ()) -> CrossOriginDecision:
        return POLICY.check_websocket(scheme=scheme, host="app.example.com", sec_fetch_site=sites, origin=origins)

    assert ws("wss", ["cross-site"], ["https://evil.example"]).rule == "fetch-cross-site"
    assert ws("wss", [], ["https://evil.example"]).rule == "origin-mismatch"
    assert ws("wss", [], ["https://app.example.com"]).rule == "origin-same"  # wss is compared as https
    assert ws("ws", [], ["http://app.example.com"]).rule == "origin-same"
    assert ws("ws", [], ["https://app.example.com"]).rule == "origin-mismatch"
    assert ws("wss", ["same-origin"]).allowed
    assert ws("wss").rule == "no-browser-headers"
    assert ws("https", [], ["https://app.example.com"]).allowed  # an http scope's scheme is taken as it is


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://a.example", "not one string"),
        (["*"], "not an origin"),
        (["null"], "not an origin"),
        (["a.example"], "has no scheme"),
        (["https://a.example/"], "path"),
        (["https://user@a.example"], "userinfo"),
        (["https://*.com"], "top-level domain"),
        (["https://*.github.io"], "public suffix"),
        (["https://a.*.example"], "leading"),
        ([""], "non-empty"),
        ([42], "only strings"),
    ],
)
def test_trusted_origins_are_validated_like_cors_origins(value: object, message: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=message) as info:
        bg.CrossOriginProtection(trusted_origins=value)  # type: ignore[arg-type]
    assert "trusted_origins" in str(info.value)


def test_idna_trusted_origins_are_stored_in_ascii() -> None:
    policy = bg.CrossOriginProtection(trusted_origins=["https://Bücher.example"])
    assert check(policy, "POST", ["cross-site"], ["https://xn--bcher-kva.example"]).allowed


@pytest.mark.parametrize("name", ["allow_same_site", "allow_null_origin"])
def test_switches_must_be_booleans(name: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=name):
        bg.CrossOriginProtection(**{name: "yes"})  # type: ignore[arg-type]


# --- the exemption marker ---------------------------------------------------------------------------------------


def test_csrf_exempt_marks_the_view_itself() -> None:
    def webhook() -> str:
        return "ok"

    assert csrf_exempt(webhook) is webhook
    assert is_csrf_exempt(webhook)
    assert not is_csrf_exempt(lambda: None)
    assert not is_csrf_exempt(None)

    class View:
        __backend_guard_csrf_exempt__ = "yes"  # only True counts

    assert not is_csrf_exempt(View)
    with pytest.raises(TypeError, match="cannot mark"):
        csrf_exempt(len)


# --- hypothesis: the whole table against a model ---------------------------------------------------------------

TRUSTED = "https://trusted.example.net"
SITES = st.sampled_from(["same-origin", "none", "same-site", "cross-site", "", "Same-Origin", "junk", "x" * 100])
ORIGINS = st.sampled_from(
    ["https://app.example.com", "https://app.example.com:443", "http://app.example.com", "https://app.example.com:8443",
     "https://evil.example", TRUSTED, "null", "https://xn--bcher-kva.example", "https://bücher.example",
     "https://app.example.com/", "x" * 600, "https://[::1]:0", ""]
)  # fmt: skip
VALUES = st.one_of(st.text(max_size=30), st.binary(max_size=30))


def _as(values: list[str], kind: str) -> list[str | bytes]:
    return [v.encode() if kind == "bytes" else v for v in values]


def model(method: str, sites: list[str], origins: list[str], same_site: bool, null: bool) -> tuple[bool, str]:
    """The decision table, written independently of the policy (same-origin = the request's own origin)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return True, "safe-method"
    trusted = origins == [TRUSTED]
    if sites:
        tokens = {t.strip().lower() for v in sites for t in v.split(",")} - {""}
        if any(len(v) > 64 for v in sites) or len(tokens) != 1:
            verdict = "fetch-unknown" if len(tokens) < 2 or any(len(v) > 64 for v in sites) else "fetch-conflict"
            return (True, "trusted-origin") if trusted else (False, verdict)
        token = tokens.pop()
        if token in ("same-origin", "none"):
            return True, "fetch-same-origin"
        if token == "same-site" and same_site:
            return True, "fetch-same-site-allowed"
        if trusted:
            return True, "trusted-origin"
        return False, {"same-site": "fetch-same-site", "cross-site": "fetch-cross-site"}.get(token, "fetch-unknown")
    if not origins:
        return True, "no-browser-headers"
    if len(origins) > 1:
        return False, "origin-duplicate"
    if origins[0] == "null":
        return (True, "origin-null-allowed") if null else (False, "origin-null")
    if trusted:
        return True, "trusted-origin"
    if origins[0] in ("https://app.example.com", "https://app.example.com:443"):
        return True, "origin-same"
    if origins[0] in ("http://app.example.com", "https://app.example.com:8443", "https://evil.example"):
        return False, "origin-mismatch"
    if origins[0] == "https://xn--bcher-kva.example":
        return False, "origin-mismatch"
    return False, "origin-malformed"


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "get", "PATCH"]),
    sites=st.lists(SITES, max_size=3),
    origins=st.lists(ORIGINS, max_size=2),
    kind=st.sampled_from(["str", "bytes"]),
    same_site=st.booleans(),
    null=st.booleans(),
)
def test_the_decision_table_holds_for_header_combinations(
    method: str, sites: list[str], origins: list[str], kind: str, same_site: bool, null: bool
) -> None:
    policy = bg.CrossOriginProtection(trusted_origins=[TRUSTED], allow_same_site=same_site, allow_null_origin=null)
    decision = check(policy, method, _as(sites, kind), _as(origins, kind))
    assert (decision.allowed, decision.rule) == model(method, sites, origins, same_site, null)
    assert decision.code == (None if decision.allowed else "cross-origin-request")


@settings(max_examples=300, deadline=None)
@given(
    method=st.one_of(st.text(max_size=10), st.sampled_from(["POST", "GET"])),
    sites=st.lists(VALUES, max_size=3),
    origins=st.lists(VALUES, max_size=3),
    scheme=st.text(max_size=8),
    host=st.text(max_size=40),
)
def test_arbitrary_values_never_raise(
    method: str, sites: list[str | bytes], origins: list[str | bytes], scheme: str, host: str
) -> None:
    decision = check(POLICY, method, sites, origins, scheme, host)
    assert isinstance(decision, CrossOriginDecision)
    if method not in ("GET", "HEAD", "OPTIONS") and any(s in ("cross-site", b"cross-site") for s in sites):
        assert not decision.allowed  # no junk next to "cross-site" turns it into a pass


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=1_000, max_value=200_000), byte=st.sampled_from(["a", "é", "\x00", ",", " "]))
def test_huge_values_are_refused_without_raising(size: int, byte: str) -> None:
    assert not check(POLICY, "POST", [byte * size]).allowed
    assert not check(POLICY, "POST", [], [byte * size]).allowed


@pytest.mark.parametrize("module", ["_decision", "_exempt", "_policy", "_trusted"])
def test_the_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"backend_guard.csrf.{module}"))
    assert result.failed == 0
