"""SecureHeaders core: CSP and Permissions-Policy builders, presets, the merge, nonces."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_guard.exceptions import ConfigurationError
from backend_guard.headers import (
    NONCE_KEY,
    ContentSecurityPolicy,
    PermissionsPolicy,
    SecureHeaders,
    csp_nonce,
    is_document_type,
    peek_nonce,
)

NONCE = ContentSecurityPolicy.NONCE
N = "abcdefghijklmnopqrstuvwx"  # a well-formed 24-character nonce


def as_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        assert k.lower() not in out, f"duplicate header {k}"
        out[k.lower()] = v
    return out


def raw_dict(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return as_dict([(k.decode(), v.decode()) for k, v in pairs])


# -- ContentSecurityPolicy -----------------------------------------------------------------------------------------


def test_csp_renders_directives_in_order() -> None:
    csp = ContentSecurityPolicy(
        default_src=["'self'"], img_src=["'self'", "https://img.example", "data:"], upgrade_insecure_requests=True
    )
    assert (
        csp.header_value() == "default-src 'self'; img-src 'self' https://img.example data:; upgrade-insecure-requests"
    )
    assert str(csp) == csp.header_value()
    assert not csp.uses_nonce


def test_csp_mapping_form_and_kwargs_merge() -> None:
    csp = ContentSecurityPolicy({"default-src": ["'none'"]}, frame_ancestors=["'none'"])
    assert csp.directives == {"default-src": ("'none'",), "frame-ancestors": ("'none'",)}


def test_csp_nonce_placeholder_rendering() -> None:
    csp = ContentSecurityPolicy(
        default_src=["'self'"], script_src=[NONCE, "'strict-dynamic'"], style_src=["'self'", NONCE]
    )
    assert csp.uses_nonce
    assert csp.header_value(N) == (
        f"default-src 'self'; script-src 'nonce-{N}' 'strict-dynamic'; style-src 'self' 'nonce-{N}'"
    )
    # no nonce used: strict-dynamic alone would be invalid, so the directive becomes 'none'
    assert csp.header_value() == "default-src 'self'; script-src 'none'; style-src 'self'"
    assert str(csp) == f"default-src 'self'; script-src {NONCE} 'strict-dynamic'; style-src 'self' {NONCE}"


def test_csp_nonce_template_joins_into_the_header_value() -> None:
    csp = ContentSecurityPolicy(default_src=["'self'"], script_src=[NONCE, "'strict-dynamic'"], style_src=[NONCE])
    assert N.join(csp.nonce_template()) == csp.header_value(N)
    assert len(csp.nonce_template()) == 3  # two nonce places
    assert ContentSecurityPolicy(default_src=["'self'"]).nonce_template() == ()


def test_csp_hash_keeps_strict_dynamic_without_nonce() -> None:
    digest = "'sha256-" + "A" * 43 + "='"
    csp = ContentSecurityPolicy(default_src=["'self'"], script_src=[NONCE, digest, "'strict-dynamic'"])
    assert csp.header_value() == f"default-src 'self'; script-src {digest} 'strict-dynamic'"


def test_csp_refuses_a_malformed_nonce() -> None:
    csp = ContentSecurityPolicy(default_src=["'self'"], script_src=[NONCE])
    with pytest.raises(ConfigurationError):
        csp.header_value("bad nonce\r\nX-Evil: 1")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"default_src": ["self"]}, "must be quoted"),
        ({"default_src": ["none"]}, "must be quoted"),
        ({"default_src": ["'self'"], "script_src": ["strict-dynamic", NONCE]}, "must be quoted"),
        ({"default_src": ["'self'"], "script_src": ["unsafe-inline"]}, "must be quoted"),
        ({"default_src": ["'self'"], "script_src": ["nonce-abc"]}, "must be quoted"),
        ({"default_src": ["'self'"], "script_src": ["sha256-abc"]}, "must be quoted"),
        ({"default_src": ["'self'"], "script_src": ["'nonce-abcdefghijklmnop'"]}, "fixed nonce"),
        ({"default_src": ["'self'"], "script_src": ["'strict-dynamic'"]}, "strict-dynamic"),
        ({"default_src": ["'self'"], "script_src": ["'strict-dynamic'", "'self'"]}, "strict-dynamic"),
        ({"default_src": ["'self'; script-src *"]}, "';'"),
        ({"default_src": ["'self'", "a.example,b.example"]}, "','"),
        ({"default_src": ["https://a.example\r\nX-Evil: 1"]}, "control"),
        ({"default_src": ["'self' https:"]}, "space"),
        ({"default_src": ["'self'"], "scrpt_src": ["'self'"]}, "did you mean 'script-src'"),
        ({"script_src": ["'self'"]}, "default-src"),
        ({"default_src": []}, "empty"),
        ({"default_src": ["'none'", "'self'"]}, "cannot be combined"),
        ({"default_src": ["'self'", "'self'"]}, "twice"),
        ({"default_src": ["'bogus'"]}, "unknown quoted"),
        ({"default_src": ["'self'"], "upgrade_insecure_requests": ["x"]}, "takes True"),
        ({"default_src": ["'self'"], "sandbox": ["allow-everything"]}, "sandbox"),
        ({"default_src": ["'self'"], "report_to": ["a", "b"]}, "exactly one"),
        ({"default_src": ["'self'"], "report_uri": ["javascript:alert(1)"]}, "report-uri"),
        ({"default_src": ["'self'"], "webrtc": ["'maybe'"]}, "webrtc"),
        ({"default_src": ["'self'"], "require_trusted_types_for": ["script"]}, "'script'"),
        ({"default_src": ["https://bad host"]}, "space"),
        ({"default_src": ["ht tp://x"]}, "space"),
        ({"default_src": ["https://ex\u00e4mple.com"]}, "ASCII"),
        ({"default_src": [1]}, "string"),
        ({"default_src": True}, "list of sources"),
        ({}, "at least one"),
    ],
)
def test_csp_refuses_unsafe_or_invalid(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ContentSecurityPolicy(**kwargs)


def test_csp_duplicate_directive_through_both_spellings() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        ContentSecurityPolicy({"default-src": ["'self'"]}, default_src=["'none'"])
    with pytest.raises(ConfigurationError, match="twice"):
        ContentSecurityPolicy.parse("default-src 'self'; img-src *; default-src 'none'")


def test_csp_missing_default_src_may_be_allowed_explicitly() -> None:
    csp = ContentSecurityPolicy(frame_ancestors=["'none'"], allow_missing_default_src=True)
    assert csp.header_value() == "frame-ancestors 'none'"


def test_csp_parse_and_errors() -> None:
    csp = ContentSecurityPolicy.parse("default-src 'none';  frame-ancestors 'none' ; upgrade-insecure-requests;")
    assert csp == ContentSecurityPolicy(
        default_src=["'none'"], frame_ancestors=["'none'"], upgrade_insecure_requests=True
    )
    assert hash(csp) == hash(ContentSecurityPolicy.parse(str(csp)))
    with pytest.raises(ConfigurationError):
        ContentSecurityPolicy.parse("default-src 'self'\r\nX-Evil: 1")
    with pytest.raises(ConfigurationError):
        ContentSecurityPolicy.parse("default-src 'self', img-src *")
    assert "default-src" in repr(csp)


_SOURCES = st.sampled_from(
    [
        "'self'",
        "https:",
        "data:",
        "https://cdn.example.com",
        "*.example.org",
        "wss://ws.example.com:8443/path/x.js",
        "'unsafe-hashes'",
        "'report-sample'",
        "'sha256-" + "B" * 43 + "='",
        NONCE,
    ]
)
_NAMES = st.sampled_from(["script-src", "style-src", "img-src", "connect-src", "font-src", "worker-src"])


@given(st.dictionaries(_NAMES, st.lists(_SOURCES, min_size=1, max_size=4, unique=True), max_size=5))
def test_csp_text_round_trip(extra: dict[str, list[str]]) -> None:
    csp = ContentSecurityPolicy({"default-src": ["'self'"], **extra})
    again = ContentSecurityPolicy.parse(str(csp))
    assert again == csp
    assert again.header_value(N) == csp.header_value(N)
    value = csp.header_value(N)
    assert not re.search(r"[\x00-\x1f\x7f]", value)
    assert (f"'nonce-{N}'" in value) == csp.uses_nonce
    assert "'nonce" not in csp.header_value()


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_csp_any_source_text_is_refused_or_harmless(text: str) -> None:
    try:
        csp = ContentSecurityPolicy(default_src=["'self'", text])
    except ConfigurationError:
        return
    value = csp.header_value()
    assert value.count(";") == 0
    assert not re.search(r"[\x00-\x1f\x7f,\s]", text)
    assert value.isascii()


@given(st.text(max_size=60))
def test_csp_parse_never_raises_anything_but_configuration_error(text: str) -> None:
    try:
        csp = ContentSecurityPolicy.parse(text)
    except ConfigurationError:
        return
    assert ContentSecurityPolicy.parse(str(csp)) == csp


# -- PermissionsPolicy ---------------------------------------------------------------------------------------------


def test_permissions_policy_renders() -> None:
    pp = PermissionsPolicy(
        {"xr-spatial-tracking": []}, camera=[], geolocation=["self", "https://maps.example"], fullscreen="*"
    )
    assert pp.header_value() == (
        'xr-spatial-tracking=(), camera=(), geolocation=(self "https://maps.example"), fullscreen=*'
    )
    assert str(pp) == pp.header_value()
    assert pp.features["camera"] == ()
    assert "camera" in repr(pp)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"camra": []}, "did you mean 'camera'"),
        ({"interest_cohorts": []}, "Unknown"),
        ({"camera": ["'self'"]}, "unquoted"),
        ({"camera": "none"}, "unquoted"),
        ({"camera": ["ftp://x.example"]}, "origin"),
        ({"camera": ['https://x.example")']}, "origin"),
        ({"camera": ["*", "self"]}, "combined"),
        ({"camera": [3]}, "strings"),
        ({}, "at least one"),
    ],
)
def test_permissions_policy_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PermissionsPolicy(**kwargs)


def test_permissions_policy_duplicate() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        PermissionsPolicy({"sync-xhr": []}, sync_xhr=[])


# -- SecureHeaders presets and options -----------------------------------------------------------------------------


def test_default_is_the_api_preset() -> None:
    h = as_dict(SecureHeaders().headers_for(secure=True))
    assert h == as_dict(SecureHeaders(preset="api").headers_for(secure=True))
    assert h["content-security-policy"] == (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    assert h["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert h["cross-origin-resource-policy"] == "same-origin"
    # the headers that only act on HTML documents are left to the "web" preset (docs/headers.md)
    for name in (
        "permissions-policy",
        "origin-agent-cluster",
        "x-permitted-cross-domain-policies",
        "x-dns-prefetch-control",
        "x-xss-protection",
    ):
        assert name not in h, name
    assert "cross-origin-embedder-policy" not in h
    assert "cache-control" not in h


def test_web_preset_keeps_the_document_headers_and_api_can_opt_in() -> None:
    h = as_dict(SecureHeaders(preset="web").headers_for(secure=True))
    assert h["permissions-policy"].startswith("accelerometer=(), camera=()")
    assert h["origin-agent-cluster"] == "?1"
    assert h["x-permitted-cross-domain-policies"] == "none"
    assert h["x-dns-prefetch-control"] == "off"
    assert h["x-xss-protection"] == "0"
    opted = SecureHeaders(
        permissions_policy=PermissionsPolicy(camera=[]),
        origin_agent_cluster=True,
        x_permitted_cross_domain_policies="none",
        x_dns_prefetch_control="off",
        x_xss_protection="0",
    )
    a = as_dict(opted.headers_for(secure=True))
    assert a["permissions-policy"] == "camera=()"
    assert (a["origin-agent-cluster"], a["x-xss-protection"]) == ("?1", "0")
    assert (a["x-permitted-cross-domain-policies"], a["x-dns-prefetch-control"]) == ("none", "off")
    off = as_dict(
        SecureHeaders(preset="web", origin_agent_cluster=False, x_xss_protection=None).headers_for(secure=True)
    )
    assert "origin-agent-cluster" not in off
    assert "x-xss-protection" not in off


def test_web_preset_is_a_strict_nonce_policy() -> None:
    policy = SecureHeaders(preset="web")
    with_nonce = as_dict(policy.headers_for(secure=True, nonce=N))["content-security-policy"]
    assert f"script-src 'nonce-{N}' 'strict-dynamic'" in with_nonce
    assert "object-src 'none'" in with_nonce
    assert "base-uri 'none'" in with_nonce
    assert "frame-ancestors 'none'" in with_nonce
    without = as_dict(policy.headers_for(secure=True))["content-security-policy"]
    assert "nonce" not in without
    assert "script-src 'none'" in without
    assert as_dict(policy.headers_for(secure=True))["referrer-policy"] == "strict-origin-when-cross-origin"


def test_unknown_preset() -> None:
    with pytest.raises(ConfigurationError, match="preset"):
        SecureHeaders(preset="html")


def test_every_header_can_be_configured_or_turned_off() -> None:
    policy = SecureHeaders(
        csp="default-src 'self'",
        hsts_max_age=31_536_000,
        hsts_preload=True,
        x_frame_options="SAMEORIGIN",
        referrer_policy="same-origin",
        permissions_policy=PermissionsPolicy(camera=["self"]),
        cross_origin_opener_policy="same-origin-allow-popups",
        cross_origin_embedder_policy="require-corp",
        cross_origin_resource_policy="same-site",
        x_permitted_cross_domain_policies="master-only",
        x_dns_prefetch_control="on",
        x_xss_protection=None,
    )
    h = as_dict(policy.headers_for(secure=True))
    assert h["content-security-policy"] == "default-src 'self'"
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert h["x-frame-options"] == "SAMEORIGIN"
    assert h["permissions-policy"] == "camera=(self)"
    assert h["cross-origin-embedder-policy"] == "require-corp"
    assert h["cross-origin-resource-policy"] == "same-site"
    assert "x-xss-protection" not in h
    off = SecureHeaders(
        csp=None,
        hsts=False,
        x_content_type_options=False,
        x_frame_options=None,
        referrer_policy=None,
        permissions_policy=None,
        cross_origin_opener_policy=None,
        cross_origin_resource_policy=None,
        origin_agent_cluster=False,
        x_permitted_cross_domain_policies=None,
        x_dns_prefetch_control=None,
        x_xss_protection=None,
    )
    assert off.headers_for(secure=True, nonce=N) == []
    assert off.header_names == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x_frame_options": "ALLOW-FROM https://x"}, "X-Frame-Options"),
        ({"referrer_policy": "never"}, "Referrer-Policy"),
        ({"cross_origin_embedder_policy": "require_corp"}, "Cross-Origin-Embedder-Policy"),
        ({"hsts_preload": True, "hsts_max_age": 86400}, "preload"),
        ({"hsts_preload": True, "hsts_include_subdomains": False}, "preload"),
        ({"hsts_max_age": -1}, "hsts_max_age"),
        ({"no_store_paths": ["account"]}, "starting with '/'"),
        ({"csp_report_only": "default-src 'self'"}, "reports nowhere"),
        ({"csp": "default-src 'self'; report-to csp"}, "names no endpoint"),
        ({"reporting_endpoints": {"csp": "http://insecure.example/r"}}, "https"),
        ({"reporting_endpoints": {"bad name": "https://x.example/r"}}, "name"),
        ({"reporting_endpoints": {"csp": 'https://x.example/"r'}}, "forbidden"),
        ({"permissions_policy": "camera=()\r\nX-Evil: 1"}, "control"),
        ({"permissions_policy": 5}, "PermissionsPolicy"),
        ({"csp": 5}, "ContentSecurityPolicy"),
    ],
)
def test_secure_headers_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SecureHeaders(**kwargs)


def test_enforce_and_report_only_together_with_reporting_endpoints() -> None:
    policy = SecureHeaders(
        preset="web",
        csp_report_only=ContentSecurityPolicy(
            default_src=["'self'"],
            script_src=[NONCE, "'strict-dynamic'"],
            require_trusted_types_for=["'script'"],
            report_to="csp",
        ),
        reporting_endpoints={"csp": "https://reports.example/csp", "default": "/reports"},
    )
    h = as_dict(policy.headers_for(secure=False, nonce=N))
    assert f"'nonce-{N}'" in h["content-security-policy"]
    assert h["content-security-policy-report-only"] == (
        f"default-src 'self'; script-src 'nonce-{N}' 'strict-dynamic'; require-trusted-types-for 'script'; "
        "report-to csp"
    )
    assert h["reporting-endpoints"] == 'csp="https://reports.example/csp", default="/reports"'
    raw = raw_dict(policy.merge_raw([], secure=False, path="/", nonce=N))
    assert raw == h


# -- the merge -----------------------------------------------------------------------------------------------------


def test_hsts_only_on_secure_requests_unless_forced() -> None:
    policy = SecureHeaders()
    assert "strict-transport-security" not in raw_dict(policy.merge_raw([], secure=False, path="/"))
    assert "strict-transport-security" in raw_dict(policy.merge_raw([], secure=True, path="/"))
    assert policy.needs_scheme
    forced = SecureHeaders(force_hsts=True)
    assert not forced.needs_scheme
    assert "strict-transport-security" in raw_dict(forced.merge_raw([], secure=False, path="/"))
    assert "strict-transport-security" in as_dict(forced.headers_for(secure=False))


def test_app_set_headers_win() -> None:
    policy = SecureHeaders(preset="web")
    app = [(b"x-frame-options", b"SAMEORIGIN"), (b"Content-Security-Policy", b"default-src 'self'")]
    out = policy.merge_raw(app, secure=True, path="/", nonce=N)
    names = [k.lower() for k, _ in out]
    assert names.count(b"x-frame-options") == 1
    assert names.count(b"content-security-policy") == 1
    h = {k.lower(): v for k, v in out}
    assert h[b"x-frame-options"] == b"SAMEORIGIN"
    assert h[b"content-security-policy"] == b"default-src 'self'"
    assert h[b"x-content-type-options"] == b"nosniff"
    s = policy.merge_str([("X-Frame-Options", "SAMEORIGIN")], secure=True, path="/")
    assert [k.lower() for k, _ in s].count("x-frame-options") == 1
    assert dict(s)["X-Frame-Options"] == "SAMEORIGIN"
    helper = as_dict(policy.headers_for(secure=True, existing=["x-frame-options", "Content-Security-Policy"]))
    assert "x-frame-options" not in helper
    assert "content-security-policy" not in helper


def test_replace_mode_never_leaves_two_policies() -> None:
    policy = SecureHeaders(preset="web")
    app = [(b"content-security-policy", b"default-src *"), (b"X-Frame-Options", b"SAMEORIGIN"), (b"etag", b'"1"')]
    out = policy.merge_raw(app, secure=True, path="/", nonce=N, replace=True)
    names = [k.lower() for k, _ in out]
    assert names.count(b"content-security-policy") == 1
    assert names.count(b"x-frame-options") == 1
    h = dict(out)
    assert f"'nonce-{N}'".encode() in h[b"content-security-policy"]
    assert h[b"x-frame-options"] == b"DENY"
    assert h[b"etag"] == b'"1"'
    s = policy.merge_str([("Content-Security-Policy", "default-src *")], secure=True, path="/", replace=True)
    assert [k.lower() for k, _ in s].count("content-security-policy") == 1
    assert "default-src *" not in dict(s).values()


def test_disclosure_headers_are_removed_case_insensitively() -> None:
    policy = SecureHeaders()
    app = [(b"Server", b"gunicorn/21"), (b"x-powered-by", b"PHP"), (b"X-AspNet-Version", b"4"), (b"etag", b"1")]
    out = raw_dict(policy.merge_raw(app, secure=False, path="/"))
    assert not {"server", "x-powered-by", "x-aspnet-version"} & set(out)
    assert out["etag"] == "1"
    s = as_dict(policy.merge_str([("Server", "x"), ("X-Powered-By", "y")], secure=False, path="/"))
    assert "server" not in s
    assert "x-powered-by" not in s
    keep = SecureHeaders(remove_headers=())
    assert "server" in raw_dict(keep.merge_raw([(b"server", b"x")], secure=False, path="/"))
    assert "server" in policy.removed


@pytest.mark.parametrize(
    ("path", "no_store"),
    [
        ("/account", True),
        ("/account/", True),
        ("/account/keys", True),
        ("/accounts", False),
        ("/auth/login", True),
        ("/authors", False),
        ("/", False),
        ("/public/account", False),
    ],
)
def test_no_store_for_sensitive_prefixes(path: str, no_store: bool) -> None:
    policy = SecureHeaders(no_store_paths=["/account/", "/auth"])
    h = raw_dict(policy.merge_raw([], secure=False, path=path))
    assert (h.get("cache-control") == "no-store") is no_store
    assert "cache-control" in policy.header_names
    # the app's own Cache-Control wins
    app = raw_dict(policy.merge_raw([(b"cache-control", b"private, max-age=5")], secure=False, path=path))
    assert app["cache-control"] == "private, max-age=5"


def test_root_prefix_covers_everything() -> None:
    policy = SecureHeaders(no_store_paths=["/"])
    assert raw_dict(policy.merge_raw([], secure=False, path="/x/y"))["cache-control"] == "no-store"


def test_a_malformed_nonce_is_ignored_never_echoed() -> None:
    policy = SecureHeaders(preset="web")
    evil = "x\r\nSet-Cookie: a=b"
    out = raw_dict(policy.merge_raw([], secure=False, path="/", nonce=evil))
    assert "set-cookie" not in out
    assert "nonce" not in out["content-security-policy"]
    assert "nonce" not in as_dict(policy.merge_str([], secure=False, path="/", nonce=evil))["content-security-policy"]
    with pytest.raises(ConfigurationError):
        policy.headers_for(secure=False, nonce=evil)


def test_nonce_only_added_to_policies_with_the_placeholder() -> None:
    out = raw_dict(SecureHeaders().merge_raw([], secure=False, path="/", nonce=N))
    assert "nonce" not in out["content-security-policy"]


def test_repr_names_the_preset() -> None:
    assert "preset='web'" in repr(SecureHeaders(preset="web"))


# -- nonces --------------------------------------------------------------------------------------------------------


def test_nonce_on_an_asgi_scope_is_lazy_stable_and_strong() -> None:
    scope: dict[str, Any] = {"type": "http", "path": "/"}
    assert peek_nonce(scope) is None
    first = csp_nonce(scope)
    assert scope["state"][NONCE_KEY] == first
    assert csp_nonce(scope) == first
    assert peek_nonce(scope) == first
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", first)  # 144 bits of token_urlsafe
    other: dict[str, Any] = {"type": "http", "state": {}}
    assert csp_nonce(other) != first


def test_nonces_are_never_shared() -> None:
    seen = {csp_nonce({"type": "http"}) for _ in range(2000)}
    assert len(seen) == 2000


def test_nonce_on_a_wsgi_environ() -> None:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    assert peek_nonce(environ) is None
    nonce = csp_nonce(environ)
    assert environ[NONCE_KEY] == nonce
    assert peek_nonce(environ) == nonce


def test_nonce_on_a_starlette_request() -> None:
    from starlette.requests import Request

    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    nonce = csp_nonce(request)
    assert request.scope["state"][NONCE_KEY] == nonce
    assert peek_nonce(request) == nonce


def test_nonce_in_flask_without_arguments() -> None:
    import flask

    app = flask.Flask(__name__)
    with app.test_request_context("/"):
        nonce = csp_nonce()
        assert flask.g.csp_nonce == nonce
        assert flask.request.environ[NONCE_KEY] == nonce
        assert csp_nonce(flask.request) == nonce
        assert peek_nonce(flask.request) == nonce
    with pytest.raises(RuntimeError, match="Flask"):
        csp_nonce()


def _django_ready() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only-not-secret",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="tests.test_headers",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


def test_nonce_on_a_django_request_and_the_lazy_context_processor() -> None:
    _django_ready()
    from django.test import RequestFactory

    from backend_guard.integrations._headers_django import csp_nonce_context

    request = RequestFactory().get("/")
    context = csp_nonce_context(request)
    assert peek_nonce(request) is None  # not made until a template renders it
    rendered = str(context["csp_nonce"])
    assert request.csp_nonce == rendered  # type: ignore[attr-defined]
    assert request.META[NONCE_KEY] == rendered
    assert csp_nonce(request) == rendered


def test_nonce_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError):
        csp_nonce(object())
    assert peek_nonce(object()) is None


def test_nonces_are_144_random_bits_in_csp_base64() -> None:
    import base64

    for nonce in (csp_nonce({"type": "http"}) for _ in range(500)):
        assert len(nonce) == 24
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", nonce)  # URL-safe base64, a CSP base64-value, no padding
        assert len(base64.urlsafe_b64decode(nonce)) == 18
        assert ContentSecurityPolicy(default_src=["'self'"], script_src=[NONCE]).header_value(nonce)


def test_nonce_fast_path_on_a_scope_dict_and_the_general_path_on_other_mappings() -> None:
    from collections import UserDict

    scope: dict[str, Any] = {"type": "http"}  # no state yet: made
    nonce = csp_nonce(scope)
    assert scope["state"][NONCE_KEY] == nonce
    assert csp_nonce(scope) == nonce  # reused
    scope["state"][NONCE_KEY] = 123  # garbage in the slot is replaced, never used
    assert isinstance(csp_nonce(scope), str)
    assert scope["state"][NONCE_KEY] != 123
    other: Any = UserDict({"type": "http", "state": {}})  # a mapping that is not a dict: the general path
    assert csp_nonce(other) == other["state"][NONCE_KEY]
    environ = {"REQUEST_METHOD": "GET", "type": "not-a-scope"}  # an environ holding a "type" key
    assert csp_nonce(environ) == environ[NONCE_KEY]


# -- HTML documents and everything else ----------------------------------------------------------------------------

HTML = [("Content-Type", "text/html; charset=utf-8")]
JSON = [("Content-Type", "application/json")]
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _csp_for(policy: SecureHeaders, headers: list[tuple[str, str]], nonce: str | None = None) -> dict[str, str]:
    """The headers the WSGI merge, the ASGI merge and headers_for give one response: all three must agree."""
    text = as_dict(policy.merge_str(headers, secure=True, path="/", nonce=nonce))
    raw = raw_dict(
        policy.merge_raw([(k.lower().encode(), v.encode()) for k, v in headers], secure=True, path="/", nonce=nonce)
    )
    content_type = dict((k.lower(), v) for k, v in headers).get("content-type")
    helper = as_dict(
        policy.headers_for(secure=True, nonce=nonce, content_type=content_type, existing=[k for k, _ in headers])
    )
    assert text == raw
    assert {k: v for k, v in text.items() if k not in {k.lower() for k, _ in headers}} == helper
    return text


def test_json_responses_keep_the_api_policy() -> None:
    policy = SecureHeaders()
    for headers in (JSON, [("Content-Type", "text/plain")], [("content-type", "image/svg+xml")], []):
        h = _csp_for(policy, headers, nonce=N)
        assert h["content-security-policy"] == API_CSP
        assert h["referrer-policy"] == "no-referrer"
        assert "permissions-policy" not in h


def test_html_responses_get_a_document_policy_that_lets_the_page_work() -> None:
    h = _csp_for(SecureHeaders(), HTML)
    assert h["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
        "object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    # no-referrer would make a browser send "Origin: null" with the page's own form posts (CSRF checks refuse it)
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"
    # the headers that act on documents come with the document policy
    assert h["permissions-policy"].startswith("accelerometer=(), camera=()")
    assert (h["origin-agent-cluster"], h["x-xss-protection"], h["x-content-type-options"]) == ("?1", "0", "nosniff")
    assert h["x-frame-options"] == "DENY"


def test_an_html_response_that_used_a_nonce_carries_it_for_scripts_and_styles() -> None:
    h = _csp_for(SecureHeaders(), HTML, nonce=N)
    assert f"script-src 'self' 'nonce-{N}'" in h["content-security-policy"]
    assert f"style-src 'self' 'nonce-{N}'" in h["content-security-policy"]


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "TEXT/HTML", "text/html;charset=utf-8", " text/html ; charset=UTF-8", "application/xhtml+xml"],
)
def test_every_spelling_of_an_html_content_type_is_a_document(content_type: str) -> None:
    h = _csp_for(SecureHeaders(), [("Content-Type", content_type)])
    assert "form-action 'self'" in h["content-security-policy"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_only_an_html_media_type_relaxes_the_api_policy(content_type: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    h = _csp_for(SecureHeaders(), [("Content-Type", content_type)])
    document = media in ("text/html", "application/xhtml+xml")
    assert (h["content-security-policy"] == API_CSP) is not document


def test_an_explicit_csp_is_kept_for_html_responses_too() -> None:
    mine = "default-src 'none'; style-src 'self'; frame-ancestors 'none'"
    policy = SecureHeaders(csp=mine)
    assert _csp_for(policy, HTML)["content-security-policy"] == mine
    assert _csp_for(policy, JSON)["content-security-policy"] == mine


def test_document_csp_sets_the_policy_of_html_responses_only() -> None:
    page = "default-src 'self'; frame-ancestors 'none'"
    policy = SecureHeaders(document_csp=page)
    assert _csp_for(policy, HTML)["content-security-policy"] == page
    assert _csp_for(policy, JSON)["content-security-policy"] == API_CSP
    with pytest.raises(ConfigurationError, match="document_csp"):
        SecureHeaders(document_csp="default-src self")


def test_the_apps_own_csp_on_an_html_response_wins() -> None:
    own = [*HTML, ("Content-Security-Policy", "default-src 'self' https://cdn.example")]
    h = _csp_for(SecureHeaders(), own)
    assert h["content-security-policy"] == "default-src 'self' https://cdn.example"


def test_an_explicit_keyword_applies_to_html_responses_too() -> None:
    policy = SecureHeaders(referrer_policy="no-referrer", permissions_policy=None, origin_agent_cluster=False)
    h = _csp_for(policy, HTML)
    assert h["referrer-policy"] == "no-referrer"
    assert "permissions-policy" not in h
    assert "origin-agent-cluster" not in h


def test_web_preset_gives_every_response_its_strict_nonce_policy() -> None:
    policy = SecureHeaders(preset="web")
    assert not policy.splits_documents
    assert _csp_for(policy, HTML, nonce=N) == _csp_for(policy, JSON, nonce=N) | {"content-type": HTML[0][1]}


def test_settings_document_csp_sets_the_policy_of_html_responses() -> None:
    import backend_guard as bg

    page = "default-src 'self'; frame-ancestors 'none'"
    policy = bg.GuardSettings(secure_headers={"document_csp": page}).secure_headers.build()
    assert _csp_for(policy, HTML)["content-security-policy"] == page
    assert _csp_for(policy, JSON)["content-security-policy"] == API_CSP


# -- 304 Not Modified ----------------------------------------------------------------------------------------------
# A browser copies a 304's headers, CSP included, onto the response it cached (Chromium; WPT
# 304-response-should-update-csp), and a 304 has no Content-Type: it must carry no header whose value depends on
# the kind of response, nor a CSP holding a nonce (the cached page's nonce is another one).

NOT_MODIFIED_POLICIES = {
    "api": SecureHeaders,
    "web": lambda: SecureHeaders(preset="web"),
    "explicit csp": lambda: SecureHeaders(csp="default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    "explicit nonce csp": lambda: SecureHeaders(csp=ContentSecurityPolicy(default_src=["'self'"], script_src=[NONCE])),
    "document_csp and report-only": lambda: SecureHeaders(
        document_csp="default-src 'self'",
        csp_report_only=ContentSecurityPolicy(default_src=["'self'"], report_to="csp"),
        reporting_endpoints={"csp": "https://example.com/r"},
        no_store_paths=["/"],
    ),
}


def _not_modified(policy: SecureHeaders, nonce: str | None) -> dict[str, str]:
    """The headers a 304 gets from the WSGI merge, the ASGI merge and headers_for: all three must agree."""
    text = as_dict(policy.merge_str([], secure=True, path="/", nonce=nonce, status=304))
    raw = raw_dict(policy.merge_raw([], secure=True, path="/", nonce=nonce, status=304))
    helper = as_dict(policy.headers_for(secure=True, nonce=nonce, status=304))
    added = raw_dict(policy.added_raw(secure=True, path="/", nonce=nonce, kind=policy.kind_raw(304, [])))
    assert text == raw == helper == added
    return text


@pytest.mark.parametrize("name", sorted(NOT_MODIFIED_POLICIES))
@pytest.mark.parametrize("nonce", [None, N])
def test_a_304_carries_only_the_headers_a_page_and_an_api_response_get_alike(name: str, nonce: str | None) -> None:
    policy = NOT_MODIFIED_POLICIES[name]()
    page = _csp_for(policy, HTML, nonce=nonce)
    api = _csp_for(policy, JSON, nonce=nonce)
    other_nonce = _csp_for(policy, HTML, nonce="zyxwvutsrqponmlkjihgfedc" if nonce is None else None)
    # the same for every response: the same name and value for a page and the rest, whatever its nonce
    alike = {
        k: v
        for k, v in page.items()
        if k != "content-type" and api.get(k) == v and other_nonce.get(k) == v and _csp_for(policy, JSON).get(k) == v
    }
    assert _not_modified(policy, nonce) == alike


def test_a_304_under_the_api_preset_keeps_the_cached_pages_csp_and_referrer_policy() -> None:
    h = _not_modified(SecureHeaders(), N)
    assert not {"content-security-policy", "referrer-policy", "permissions-policy", "origin-agent-cluster"} & set(h)
    assert h["strict-transport-security"].startswith("max-age=")
    assert (h["x-content-type-options"], h["x-frame-options"]) == ("nosniff", "DENY")


def test_a_304_under_the_web_preset_gets_no_nonce_csp_but_its_other_headers() -> None:
    h = _not_modified(SecureHeaders(preset="web"), N)
    assert "content-security-policy" not in h  # its value holds each response's own nonce
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"  # the same for every response
    assert "permissions-policy" in h


def test_a_304_keeps_an_explicit_csp_that_is_the_same_for_every_response() -> None:
    mine = "default-src 'none'; style-src 'self'; frame-ancestors 'none'"
    assert _not_modified(SecureHeaders(csp=mine), None)["content-security-policy"] == mine
    assert "content-security-policy" not in _not_modified(SecureHeaders(csp=mine, document_csp="default-src 'self'"), N)


def test_a_304_with_an_html_content_type_is_still_a_304() -> None:
    policy = SecureHeaders()
    assert policy.kind_raw(304, [(b"content-type", b"text/html")]) == SecureHeaders.NOT_MODIFIED
    assert policy.kind_raw(200, [(b"content-type", b"text/html")]) == SecureHeaders.DOCUMENT
    assert policy.kind_raw(200, []) == SecureHeaders.OTHER
    merged = raw_dict(policy.merge_raw([(b"content-type", b"text/html")], secure=False, path="/", status=304))
    assert "content-security-policy" not in merged


# -- the kind of response, remembered by the policy for both shells ---------------------------------------------

_TYPES = st.one_of(
    st.none(),
    st.sampled_from(["text/html", "TEXT/HTML; charset=utf-8", " application/xhtml+xml ", "application/json", ""]),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40),  # latin-1, as WSGI's
    st.builds(
        lambda pad, t: pad + t + pad, st.sampled_from(["\xa0", "\x85", "\x0b", "\x1c", "\t"]), st.just("text/html")
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    preset=st.sampled_from(["api", "web"]),
    calls=st.lists(st.tuples(st.sampled_from([200, 204, 304, 404, 500]), _TYPES), min_size=1, max_size=12),
)
def test_the_remembered_kind_of_a_response_is_the_kind_the_policy_reads_from_its_headers(
    preset: str, calls: list[tuple[int, str | None]]
) -> None:
    # The ASGI shell asks response_kind_raw (bytes), the WSGI shell response_kind_str (text), each remembered per
    # (status, Content-Type): asked again, and in any order, they answer what kind_raw reads off the headers.
    policy = SecureHeaders(preset=preset)
    for status, content_type in calls * 2:
        raw = None if content_type is None else content_type.encode("latin-1")
        expected = policy.kind_raw(status, [] if raw is None else [(b"content-type", raw)])
        assert policy.response_kind_raw(status, raw) == expected
        assert policy.response_kind_str(status, content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "document"),
    [
        ("text/html", True),
        (" text/html\t", True),
        ("\r\ntext/html;charset=utf-8", True),
        ("\xa0text/html", False),
        ("text/html\x85", False),
        ("\x0btext/html", False),
        ("\x1ctext/html", False),
    ],
)
def test_only_http_whitespace_around_a_media_type_is_ignored_in_bytes_and_in_text(
    content_type: str, document: bool
) -> None:
    # A browser trims HTTP's whitespace (space, tab, CR, LF) around a media type and nothing else: "\xa0text/html"
    # is no HTML page to it, so it does not get the looser document CSP here either, on ASGI (bytes) or WSGI (text).
    policy = SecureHeaders()
    kind = SecureHeaders.DOCUMENT if document else SecureHeaders.OTHER
    assert policy.response_kind_str(200, content_type) == kind
    assert policy.response_kind_raw(200, content_type.encode("latin-1")) == kind
    assert is_document_type(content_type) is document
