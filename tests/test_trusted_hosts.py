"""TrustedHosts and HTTPSRedirect, the sans-IO decisions: configuration rules, every Host rule, the redirect's
status and exempt paths, and the open-redirect properties under hypothesis (never an exception)."""

from __future__ import annotations

import doctest
import importlib
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard.hosts import HostName, Redirect, parse_host

HOSTS = bg.TrustedHosts(["example.com", "*.example.com", "Bücher.example", "127.0.0.1", "[::1]"])

# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ("example.com", "not one string"),
        ([], "at least one host"),
        (["*"], "allow_any=True"),
        (["*", "example.com"], "allow_any=True"),
        ([""], "not a host"),
        ([" example.com"], "not a valid host"),
        (["example.com:8000"], "has a port"),
        (["[::1]:8000"], "has a port"),
        (["::1"], "in brackets"),
        (["https://example.com"], "has a port"),  # the scheme's colon reads as a port: written as a host, no scheme
        (["example.com/"], "not a valid host"),
        (["user@example.com"], "not a valid host"),
        (["a.*.example.com"], "leading"),
        (["*example.com"], "leading"),
        (["*.*.example.com"], "leading"),
        (["*.com"], "other people register"),
        (["*.github.io"], "other people register"),
        (["*."], "not a host"),
        (["exa mple.com"], "not a valid host"),
        (["faß.example"], "not a valid host"),  # IDNA 2003 and browsers disagree: refused, as for CORS
        ([None], "only strings"),
    ],
)
def test_invalid_hosts_are_refused_at_construction_saying_what_to_write(hosts: object, message: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=message) as info:
        bg.TrustedHosts(hosts)  # type: ignore[arg-type]
    assert "TrustedHosts" in str(info.value)


def test_star_alone_needs_the_explicit_opt_in() -> None:
    anything = bg.TrustedHosts(["*"], allow_any=True)
    assert anything.allows("whatever.test:1234")
    assert not anything.allows("not a host")
    assert not anything.allows(["a.test", "b.test"])
    with pytest.raises(bg.ConfigurationError, match="goes with"):
        bg.TrustedHosts(["example.com"], allow_any=True)
    with pytest.raises(bg.ConfigurationError, match="alone"):
        bg.TrustedHosts(["*", "example.com"], allow_any=True)


def test_configured_hosts_are_normalised() -> None:
    hosts = bg.TrustedHosts(["EXAMPLE.com.", "[0:0::1]", "*.Bücher.example"])
    assert hosts.allows("example.com")
    assert hosts.allows("[::1]:8000")
    assert hosts.allows("shop.xn--bcher-kva.example")


# --- requests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["example.com", "EXAMPLE.COM", "example.com.", "example.com:8443", "example.com.:80", b"example.com",
     "api.example.com", "a.b.c.example.com:1", "xn--bcher-kva.example", "127.0.0.1:8000", "[::1]", "[0::1]:80",
     ["example.com"], (b"api.example.com",)],
)  # fmt: skip
def test_allowed_hosts(value: str | bytes | list[str] | tuple[bytes]) -> None:
    assert HOSTS.allows(value)


@pytest.mark.parametrize(
    "value",
    ["", None, "evil.net", "example.com.evil.net", "evilexample.com", ".example.com", "example.com..",
     "example.com:", "example.com:0", "example.com:65536", "example.com:8o", "example.com/evil", "evil@example.com",
     "example.com\r\nX: y", " example.com", "example.com ", "bücher.example", b"\xff", "a" * 10_000 + ".example.com",
     "::1", "[::1", "[::2]", "127.0.0.2", "*.example.com", ["example.com", "example.com"], [], ["evil.net"],
     "example.com:80:80", "[::1]x", "example.com:²", "example.com:080000", "example.com:-1", "example.com.:+1"],
)  # fmt: skip
def test_refused_hosts(value: object) -> None:
    assert not HOSTS.allows(value)  # type: ignore[arg-type]


def test_a_wildcard_does_not_admit_the_bare_domain() -> None:
    only_subdomains = bg.TrustedHosts(["*.example.com"])
    assert only_subdomains.allows("a.example.com")
    assert not only_subdomains.allows("example.com")


def test_parse_host() -> None:
    assert parse_host("Example.COM.:8443") == HostName("example.com", 8443)
    assert parse_host("[::1]") == HostName("[::1]", None)
    assert parse_host("a..b") is None


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(st.text(max_size=60), st.binary(max_size=60), st.none(), st.lists(st.text(max_size=20))))
def test_any_value_gives_a_boolean_and_only_listed_hosts_pass(value: object) -> None:
    allowed = HOSTS.allows(value)  # type: ignore[arg-type]
    assert allowed in (True, False)
    if allowed:
        one = value[0] if isinstance(value, list) else value
        text = one.decode("latin-1") if isinstance(one, bytes) else one
        assert isinstance(text, str)
        parsed = parse_host(text)
        assert parsed is not None
        assert parsed.host in {"example.com", "xn--bcher-kva.example", "127.0.0.1", "[::1]"} or parsed.host.endswith(
            ".example.com"
        )


# --- HTTPS redirect ---------------------------------------------------------------------------------------------

REDIRECT = bg.HTTPSRedirect(exempt_paths=("/health", "/internal/"), trusted_hosts=HOSTS)


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 301), ("HEAD", 301), ("POST", 308), ("PUT", 308), ("DELETE", 308), ("OPTIONS", 308), ("get", 308)],
)
def test_status_by_method(method: str, status: int) -> None:
    assert REDIRECT.redirect(method, scheme="http", host="example.com", path="/x") == Redirect(
        status, "https://example.com/x"
    )
    permanent = bg.HTTPSRedirect(safe_status=308)
    assert permanent.redirect(method, scheme="http", host="example.com", path="/")[0] == 308  # type: ignore[index]


@pytest.mark.parametrize("scheme", ["https", "ws", "wss", "HTTP", ""])
def test_only_plain_http_is_redirected(scheme: str) -> None:
    assert REDIRECT.redirect("GET", scheme=scheme, host="example.com", path="/") is None


@pytest.mark.parametrize(
    ("path", "exempt"),
    [("/health", True), ("/health/", False), ("/healthz", False), ("/internal/", True), ("/internal/a/b", True),
     ("/internal", False), ("/", False)],
)  # fmt: skip
def test_exempt_paths_exact_and_prefix(path: str, exempt: bool) -> None:
    assert (REDIRECT.redirect("GET", scheme="http", host="example.com", path=path) is None) is exempt


def test_the_location_is_built_from_parsed_parts() -> None:
    def location(host: str, path: str, query: str | bytes = "", port: int | None = None) -> str | None:
        decision = bg.HTTPSRedirect(https_port=port).redirect("GET", scheme="http", host=host, path=path, query=query)
        return None if decision is None else decision.location

    assert location("Example.COM.:8080", "/a", "b=1&c=%20") == "https://example.com/a?b=1&c=%20"
    assert location("example.com", "//evil.net/x") == "https://example.com/evil.net/x"
    assert location("example.com", "/a\r\nSet-Cookie: x=1") == "https://example.com/a%0D%0ASet-Cookie:%20x=1"
    assert location("example.com", "/ü", b"q=\xff") == "https://example.com/%C3%BC?q=%C3%BF"
    assert location("example.com", "/a#frag?x") == "https://example.com/a%23frag%3Fx"
    assert location("example.com", "/", "", 8443) == "https://example.com:8443/"
    assert location("example.com", "/", "", 443) == "https://example.com/"
    assert location("[::1]:8000", "/") == "https://[::1]/"
    assert location("evil.net/x", "/") is None
    assert location("evil.net@example.com", "/") is None
    assert location("", "/") is None


def test_a_host_the_allowlist_refuses_gets_no_redirect() -> None:
    assert REDIRECT.redirect("GET", scheme="http", host="evil.net", path="/") is None
    assert REDIRECT.redirect("GET", scheme="http", host="example.com.evil.net", path="/") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exempt_paths": "/health"}, "not one string"),
        ({"exempt_paths": ["health"]}, "not a path"),
        ({"exempt_paths": ["/a?b"]}, "not a path"),
        ({"exempt_paths": ["/"]}, "every path"),
        ({"safe_status": 302}, "301 or 308"),
        ({"safe_status": True}, "301 or 308"),
        ({"https_port": 0}, "port number"),
        ({"https_port": "443"}, "port number"),
        ({"trusted_hosts": ["example.com"]}, "TrustedHosts"),
    ],
)
def test_redirect_configuration_is_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=message):
        bg.HTTPSRedirect(**kwargs)  # type: ignore[arg-type]


ALLOWED_TARGETS = {"example.com", "xn--bcher-kva.example", "127.0.0.1", "::1"}


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PATCH", "x"]),
    host=st.one_of(
        st.text(max_size=40),
        st.binary(max_size=40),
        st.sampled_from(["example.com", "a.example.com:80", "evil.net", "example.com@evil.net", "[::1]:1"]),
    ),
    path=st.one_of(st.text(max_size=40), st.from_regex(r"\A/{1,3}[a-z.@:/\\]{0,20}\Z")),
    query=st.one_of(st.text(max_size=30), st.binary(max_size=30)),
)
def test_open_redirect_properties(method: str, host: str | bytes, path: str, query: str | bytes) -> None:
    decision = REDIRECT.redirect(method, scheme="http", host=host, path=path, query=query)
    if decision is None:
        return
    status, location = decision
    assert status == (301 if method in ("GET", "HEAD") else 308)
    assert HOSTS.allows(host)  # never a host the allowlist refuses
    assert location.isascii()
    assert not any(c in location for c in "\r\n\t \x00\\#")
    parts = urlsplit(location)
    assert parts.scheme == "https"
    assert parts.hostname in ALLOWED_TARGETS or (parts.hostname or "").endswith(".example.com")
    assert parts.netloc == (parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]")
    assert parts.path.startswith("/")
    assert not parts.path.startswith("//")
    assert not parts.username
    assert not parts.password


@settings(max_examples=200, deadline=None)
@given(host=st.text(min_size=1, max_size=30), path=st.text(max_size=30))
def test_without_an_allowlist_the_target_is_still_the_parsed_host(host: str, path: str) -> None:
    decision = bg.HTTPSRedirect().redirect("PUT", scheme="http", host=host, path=path)
    parsed = parse_host(host)
    assert (decision is None) is (parsed is None)
    if decision is not None and parsed is not None:
        assert urlsplit(decision.location).netloc == parsed.host


@pytest.mark.parametrize("module", ["_host", "_redirect", "_trusted"])
def test_the_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"backend_guard.hosts.{module}"))
    assert result.failed == 0
