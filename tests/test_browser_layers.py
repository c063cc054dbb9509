"""The browser-session shells in process: CrossOriginProtection, TrustedHost and HTTPSRedirect middlewares (ASGI
and WSGI), their place in Guard's stack, exemptions, and hostile headers (never a 500)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard import asgi, wsgi
from backend_guard._stack import StackParts
from backend_guard.csrf import csrf_exempt

HOST = "app.example.com"
SAME = f"https://{HOST}"
EVIL = "https://evil.example"


# -- drivers --------------------------------------------------------------------------------------------------


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"app"})


def call_asgi(
    app: Any,
    method: str = "POST",
    headers: list[tuple[str, str]] | None = None,
    *,
    scheme: str = "https",
    path: str = "/",
    query: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in (headers if headers is not None else [("host", HOST)])
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": scheme, "method": method,
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": raw,
        "client": ("203.0.113.9", 5000), "server": ("10.0.0.1", 443),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


def call_wsgi(
    app: Any,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    *,
    scheme: str = "https",
    path: str = "/",
    query: str = "",
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "localhost", "SERVER_PORT": "443", "REMOTE_ADDR": "203.0.113.9", "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
    }  # fmt: skip
    for name, value in (headers if headers is not None else {"host": HOST}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = int(status[:3]), dict(response_headers)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return started["status"], {k.lower(): v for k, v in started["headers"].items()}, body


# -- cross-origin protection ----------------------------------------------------------------------------------

CASES = [
    # (method, headers besides Host, expected status)
    ("POST", {"sec-fetch-site": "cross-site"}, 403),
    ("POST", {"origin": EVIL}, 403),
    ("POST", {"origin": "null"}, 403),
    ("PUT", {"sec-fetch-site": "same-site"}, 403),
    ("POST", {"sec-fetch-site": "same-origin"}, 200),
    ("POST", {"origin": SAME}, 200),
    ("DELETE", {}, 200),  # no browser headers
    ("GET", {"sec-fetch-site": "cross-site", "origin": EVIL}, 200),  # safe method
    ("HEAD", {"origin": EVIL}, 200),
    ("OPTIONS", {"origin": EVIL}, 200),
]


@pytest.mark.parametrize(("method", "extra", "status"), CASES)
def test_cross_origin_protection_asgi_and_wsgi(method: str, extra: dict[str, str], status: int) -> None:
    headers = {"host": HOST, **extra}
    a_status, a_headers, a_body = call_asgi(
        asgi.CrossOriginProtectionMiddleware(_asgi_app), method, list(headers.items())
    )
    w_status, w_headers, w_body = call_wsgi(wsgi.CrossOriginProtectionMiddleware(_wsgi_app), method, headers)
    assert a_status == w_status == status
    if status == 403:
        for content_type, body in ((a_headers["content-type"], a_body), (w_headers["content-type"], w_body)):
            assert content_type == "application/problem+json"
            assert json.loads(body)["code"] == "cross-origin-request"
    else:
        assert a_body == w_body == b"app"


def test_the_scheme_is_part_of_the_origin() -> None:
    headers = [("host", HOST), ("origin", f"http://{HOST}")]
    assert call_asgi(asgi.CrossOriginProtectionMiddleware(_asgi_app), "POST", headers)[0] == 403
    assert call_asgi(asgi.CrossOriginProtectionMiddleware(_asgi_app), "POST", headers, scheme="http")[0] == 200


def test_client_ip_resolves_the_scheme_behind_a_trusted_proxy() -> None:
    cip = bg.ClientIP(["203.0.113.0/24"])
    headers = [("host", HOST), ("origin", SAME), ("x-forwarded-proto", "https")]
    app = asgi.CrossOriginProtectionMiddleware(_asgi_app, client_ip=cip)
    assert call_asgi(app, "POST", headers, scheme="http")[0] == 200
    environ_headers = {"host": HOST, "origin": SAME, "x-forwarded-proto": "https"}
    wapp = wsgi.CrossOriginProtectionMiddleware(_wsgi_app, client_ip=cip)
    assert call_wsgi(wapp, "POST", environ_headers, scheme="http")[0] == 200


def test_exempt_paths_pass_and_are_checked() -> None:
    app = asgi.CrossOriginProtectionMiddleware(_asgi_app, exempt_paths=("/hooks/", "/stripe"))
    evil = [("host", HOST), ("origin", EVIL)]
    assert call_asgi(app, "POST", evil, path="/hooks/github")[0] == 200
    assert call_asgi(app, "POST", evil, path="/stripe")[0] == 200
    assert call_asgi(app, "POST", evil, path="/stripe/x")[0] == 403
    wapp = wsgi.CrossOriginProtectionMiddleware(_wsgi_app, exempt_paths=["/hooks/"])
    assert call_wsgi(wapp, "POST", {"host": HOST, "origin": EVIL}, path="/hooks/a")[0] == 200
    for bad in ("/", "hooks", "/a?b", "/hooks"):
        with pytest.raises(bg.ConfigurationError, match="exempt"):
            asgi.CrossOriginProtectionMiddleware(_asgi_app, exempt_paths=[bad] if bad != "/hooks" else bad)


def test_a_policy_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(bg.ConfigurationError, match="CrossOriginProtection"):
        asgi.CrossOriginProtectionMiddleware(_asgi_app, policy=bg.CORSPolicy(allow_origins=[SAME]))
    with pytest.raises(bg.ConfigurationError, match="TrustedHosts"):
        wsgi.TrustedHostMiddleware(_wsgi_app, policy="example.com")
    with pytest.raises(bg.ConfigurationError, match="not both"):
        asgi.HTTPSRedirectMiddleware(_asgi_app, ("/health",), policy=bg.HTTPSRedirect())


def test_a_resolver_in_the_request_exempts_a_marked_view() -> None:
    @csrf_exempt
    def hook() -> None: ...

    def plain() -> None: ...

    async def with_resolver(view: Any) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["backend_guard.view"] = lambda s: view
            await asgi.CrossOriginProtectionMiddleware(_asgi_app)(scope, receive, send)

        return app

    evil = [("host", HOST), ("origin", EVIL)]
    assert call_asgi(asyncio.run(with_resolver(hook)), "POST", evil)[0] == 200
    assert call_asgi(asyncio.run(with_resolver(plain)), "POST", evil)[0] == 403


def test_starlette_endpoints_marked_csrf_exempt_pass_when_wrapped_or_added() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    @csrf_exempt
    async def hook(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hook")

    async def form(request: Any) -> PlainTextResponse:
        return PlainTextResponse("form")

    routes = [Route("/hook", hook, methods=["POST"]), Route("/form", form, methods=["POST"])]
    app = Starlette(routes=[*routes, Mount("/v1", routes=routes)])
    evil = [("host", HOST), ("origin", EVIL)]
    wrapped = asgi.CrossOriginProtectionMiddleware(app)
    added = Starlette(routes=routes)
    added.add_middleware(asgi.CrossOriginProtectionMiddleware)
    for outer in (wrapped, added, bg.asgi.Guard(app, bg.GuardSettings(csrf=True))):
        assert call_asgi(outer, "POST", evil, path="/hook")[:3:2] == (200, b"hook")
        assert call_asgi(outer, "POST", evil, path="/form")[0] == 403
    assert call_asgi(wrapped, "POST", evil, path="/v1/hook")[0] == 200
    assert call_asgi(wrapped, "POST", evil, path="/v1/form")[0] == 403


def test_an_exempt_endpoint_of_another_method_on_the_same_path_exempts_nothing() -> None:
    # Starlette routes a request to the first route matching path and method, and only without one to the
    # first route matching the path alone (its 405): an exempt PUT webhook listed first must not let a
    # cross-site POST through to the protected view of the same path.
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    @csrf_exempt
    async def hook(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hook")

    async def transfer(request: Any) -> PlainTextResponse:
        return PlainTextResponse("transfer")

    app = Starlette(routes=[Route("/items", hook, methods=["PUT"]), Route("/items", transfer, methods=["POST"])])
    evil = [("host", HOST), ("origin", EVIL)]
    guarded = bg.asgi.Guard(app, bg.GuardSettings(csrf=True))
    assert call_asgi(guarded, "POST", evil, path="/items")[0] == 403
    assert call_asgi(guarded, "PUT", evil, path="/items")[:3:2] == (200, b"hook")
    assert call_asgi(guarded, "DELETE", evil, path="/items")[0] == 405  # no route of that method: Starlette's 405


def test_flask_subdomain_routes_are_matched_as_flask_matches_them() -> None:
    # With subdomain matching, Flask routes api.example.com/hook to the "api" subdomain's view: the exemption of
    # the main domain's /hook webhook must not reach it.
    from flask import Flask

    app = Flask(__name__, subdomain_matching=True)
    app.config["SERVER_NAME"] = "example.com"

    @app.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "hook"

    @app.post("/hook", subdomain="api")
    def api_hook() -> str:
        return "api"

    app.wsgi_app = wsgi.Guard(app.wsgi_app, bg.GuardSettings(csrf=True))  # type: ignore[method-assign]
    client = app.test_client()
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert client.post("/hook", headers=cross, base_url="https://example.com").text == "hook"
    assert client.post("/hook", headers=cross, base_url="https://api.example.com").status_code == 403


def test_flask_views_marked_csrf_exempt_pass() -> None:
    from flask import Flask

    app = Flask(__name__)

    @app.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "hook"

    @app.post("/form")
    def form() -> str:
        return "form"

    app.wsgi_app = wsgi.Guard(app.wsgi_app, bg.GuardSettings(csrf=True))  # type: ignore[method-assign]
    client = app.test_client()
    assert client.post("/hook", headers={"Origin": EVIL}).status_code == 200
    refused = client.post("/form", headers={"Origin": EVIL})
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "cross-origin-request"
    assert client.post("/form", headers={"Origin": "http://localhost"}).status_code == 200


def _handshake(app: Any, headers: list[tuple[bytes, bytes]], extensions: dict[str, Any]) -> list[dict[str, Any]]:
    scope = {"type": "websocket", "scheme": "wss", "path": "/ws", "raw_path": b"/ws", "query_string": b"",
             "root_path": "", "headers": headers, "extensions": extensions, "subprotocols": []}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


async def _accepting(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "websocket.accept"})


def test_websocket_handshakes_are_refused_before_accept() -> None:
    app = asgi.CrossOriginProtectionMiddleware(_accepting)
    host = [(b"host", HOST.encode())]
    evil = [*host, (b"origin", EVIL.encode())]
    assert _handshake(app, [*host, (b"origin", SAME.encode())], {}) == [{"type": "websocket.accept"}]
    assert _handshake(app, evil, {}) == [{"type": "websocket.close", "code": 1008}]
    denied = _handshake(app, evil, {"websocket.http.response": {}})
    assert [m["type"] for m in denied] == ["websocket.http.response.start", "websocket.http.response.body"]
    assert denied[0]["status"] == 403
    assert json.loads(denied[1]["body"])["code"] == "cross-origin-request"
    hosts = asgi.TrustedHostMiddleware(_accepting, policy=[HOST])
    assert _handshake(hosts, [(b"host", b"evil.net")], {}) == [{"type": "websocket.close", "code": 1008}]
    assert _handshake(hosts, host, {}) == [{"type": "websocket.accept"}]


# -- trusted hosts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [(HOST, 200), ("api.example.com:8443", 200), ("evil.net", 400), ("app.example.com.evil.net", 400), ("", 400)],
)
def test_trusted_hosts_asgi_and_wsgi(host: str, status: int) -> None:
    policy = bg.TrustedHosts([HOST, "*.example.com"])
    a = call_asgi(asgi.TrustedHostMiddleware(_asgi_app, policy=policy), "GET", [("host", host)] if host else [])
    w = call_wsgi(
        wsgi.TrustedHostMiddleware(_wsgi_app, policy=[HOST, "*.example.com"]), "GET", {"host": host} if host else {}
    )
    assert a[0] == w[0] == status
    if status == 400:
        assert json.loads(a[2])["code"] == json.loads(w[2])["code"] == "unknown-host"
        assert a[1]["content-type"] == "application/problem+json"


def test_several_host_headers_are_refused() -> None:
    app = asgi.TrustedHostMiddleware(_asgi_app, policy=bg.TrustedHosts([HOST]))
    assert call_asgi(app, "GET", [("host", HOST), ("host", HOST)])[0] == 400


# -- HTTPS redirect -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "safe_status", "status"), [("GET", 301, 301), ("HEAD", 308, 308), ("POST", 301, 308)]
)
def test_https_redirect_asgi_and_wsgi(method: str, safe_status: int, status: int) -> None:
    a = call_asgi(
        asgi.HTTPSRedirectMiddleware(_asgi_app, ("/health",), safe_status=safe_status),
        method, [("host", HOST)], scheme="http", path="/a b", query=b"x=1",
    )  # fmt: skip
    w = call_wsgi(
        wsgi.HTTPSRedirectMiddleware(_wsgi_app, ("/health",), safe_status=safe_status),
        method, {"host": HOST}, scheme="http", path="/a b", query="x=1",
    )  # fmt: skip
    assert a[0] == w[0] == status
    assert a[1]["location"] == w[1]["location"] == f"https://{HOST}/a%20b?x=1"
    assert a[2] == w[2] == b""


def test_an_asgi_raw_path_carrying_the_query_string_redirects_to_the_same_url() -> None:
    # The ASGI spec keeps the query out of raw_path; Starlette's TestClient before 0.38 put it in. The query is
    # query_string's, once: never "/transfer%3Fa=1?a=1".
    app = asgi.HTTPSRedirectMiddleware(_asgi_app)
    scope_path = "/transfer?a=1"  # as raw_path; path and query_string as every server sends them
    status, headers, _ = call_asgi(app, "GET", scheme="http", path=scope_path, query=b"a=1")
    assert (status, headers["location"]) == (301, f"https://{HOST}/transfer?a=1")


def test_the_wsgi_redirect_encodes_the_decoded_path_it_was_given() -> None:
    # PEP 3333: PATH_INFO is the decoded path, its bytes as latin-1 characters. /caf%C3%A9 arrives as
    # "/caf\xc3\xa9" and /a%2541 as "/a%41": the Location must name the same resource again.
    app = wsgi.HTTPSRedirectMiddleware(_wsgi_app)
    for path, location in [("/caf\xc3\xa9", "/caf%C3%A9"), ("/a%41", "/a%2541"), ("/a b", "/a%20b")]:
        status, headers, _ = call_wsgi(app, "GET", scheme="http", path=path)
        assert (status, headers["location"]) == (301, f"https://{HOST}{location}")
    # A text path (Django's request.path_info under ASGI) is encoded as UTF-8.
    assert call_wsgi(app, "GET", scheme="http", path="/caf\xe9")[1]["location"] == f"https://{HOST}/caf%C3%A9"


def test_https_redirect_passes_https_and_exempt_paths() -> None:
    app = asgi.HTTPSRedirectMiddleware(_asgi_app, exempt_paths=("/health",))
    assert call_asgi(app, "GET", scheme="https")[0] == 200
    assert call_asgi(app, "GET", scheme="http", path="/health")[0] == 200
    wapp = wsgi.HTTPSRedirectMiddleware(_wsgi_app, exempt_paths=("/health",))
    assert call_wsgi(wapp, "GET", scheme="http", path="/health")[0] == 200


def test_https_redirect_never_redirects_to_an_untrusted_host() -> None:
    app = asgi.HTTPSRedirectMiddleware(_asgi_app, trusted_hosts=bg.TrustedHosts([HOST]))
    assert call_asgi(app, "GET", [("host", "evil.net")], scheme="http")[0] == 200
    assert call_asgi(app, "GET", [("host", HOST)], scheme="http")[0] == 301


# -- Guard ----------------------------------------------------------------------------------------------------

BROWSER = {"trusted_hosts": [HOST], "https_redirect": True, "csrf": True}


@pytest.mark.parametrize("protocol", ["asgi", "wsgi"])
def test_guard_refusals_are_problem_documents_with_every_header(protocol: str) -> None:
    settings = bg.GuardSettings(**BROWSER, cors={"allow_origins": [EVIL]})
    if protocol == "asgi":
        guard: Any = asgi.Guard(_asgi_app, settings)
        call: Any = lambda m, h, **kw: call_asgi(guard, m, list(h.items()), **kw)  # noqa: E731
    else:
        guard = wsgi.Guard(_wsgi_app, settings)
        call = lambda m, h, **kw: call_wsgi(guard, m, h, **kw)  # noqa: E731
    cases = [
        (call("POST", {"host": HOST, "origin": EVIL}), 403, "cross-origin-request"),
        (call("GET", {"host": "evil.net"}), 400, "unknown-host"),
    ]
    for (status, headers, body), expected, code in cases:
        assert status == expected
        assert json.loads(body)["code"] == code
        assert headers["x-request-id"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["access-control-allow-origin"] == EVIL if code == "cross-origin-request" else True
    status, headers, _ = call("POST", {"host": HOST}, scheme="http")
    assert (status, headers["location"]) == (308, f"https://{HOST}/")
    assert headers["x-request-id"]
    assert call("POST", {"host": HOST, "origin": SAME})[0] == 200


def test_guard_order_follows_the_design() -> None:
    parts = StackParts.build(bg.GuardSettings(**BROWSER, rate_limit={"default_limits": "10/second"}))
    sections = [section for section, _, _ in parts.middlewares(asgi)]
    assert sections == [
        "rate_limit",
        "csrf",
        "https_redirect",
        "trusted_hosts",
        "errors",
        "secure_headers",
        "request_id",
    ]
    assert [section for section, _, _ in parts.only(("csrf",)).middlewares(wsgi)] == ["csrf"]


def test_off_by_default() -> None:
    parts = StackParts.build(bg.GuardSettings())
    assert (parts.csrf, parts.trusted_hosts, parts.https_redirect) == (None, None, None)
    assert call_asgi(asgi.Guard(_asgi_app), "POST", [("host", "evil.net"), ("origin", EVIL)], scheme="http")[0] == 200


# -- hostile input: a clean 4xx or a pass, never a 500 --------------------------------------------------------

NAMES = st.sampled_from(["host", "origin", "sec-fetch-site", "x-forwarded-proto", "x-forwarded-host"])
TEXT = st.one_of(
    st.sampled_from([HOST, SAME, EVIL, "null", "same-origin", "cross-site", "", ",", "*", "https://", "[::1]:99999"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
    st.integers(1000, 20000).map(lambda n: "a" * n),
)
GUARD = asgi.Guard(
    _asgi_app,
    bg.GuardSettings(**BROWSER, trusted_proxies=["203.0.113.0/24"], forwarded_fields=["for", "proto", "host"]),
)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "post", "OPTIONS"]),
    headers=st.lists(st.tuples(NAMES, TEXT), max_size=6),
    scheme=st.sampled_from(["http", "https"]),
)
def test_hostile_browser_headers_never_cause_a_500(method: str, headers: list[tuple[str, str]], scheme: str) -> None:
    status, _, body = call_asgi(GUARD, method, headers, scheme=scheme)
    assert status in (200, 301, 308, 400, 403)
    if status in (400, 403):
        assert json.loads(body)["code"] in ("unknown-host", "cross-origin-request")


WSGI_GUARD = wsgi.Guard(_wsgi_app, bg.GuardSettings(**BROWSER, trusted_proxies=["203.0.113.0/24"]))


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "post"]),
    headers=st.dictionaries(NAMES, TEXT, max_size=5),
    scheme=st.sampled_from(["http", "https"]),
)
def test_hostile_browser_headers_never_cause_a_500_in_wsgi(method: str, headers: dict[str, str], scheme: str) -> None:
    status, _, body = call_wsgi(WSGI_GUARD, method, headers, scheme=scheme)
    assert status in (200, 301, 308, 400, 403)
    if status in (400, 403):
        assert json.loads(body)["code"] in ("unknown-host", "cross-origin-request")


# -- settings -------------------------------------------------------------------------------------------------


def test_settings_switches_and_the_environment() -> None:
    assert not bg.GuardSettings().csrf.active
    assert bg.GuardSettings(csrf=True).csrf.active
    assert bg.GuardSettings(csrf={"allow_same_site": True}).csrf.active  # any field set switches it on
    assert not bg.GuardSettings(csrf={"enabled": False, "allow_same_site": True}).csrf.active
    env = bg.GuardSettings.from_env(
        {
            "BACKEND_GUARD_CSRF": "true",
            "BACKEND_GUARD_CSRF__EXEMPT_PATHS": "/hooks/",
            "BACKEND_GUARD_TRUSTED_HOSTS": "example.com,*.example.com",
            "BACKEND_GUARD_HTTPS_REDIRECT": "true",
        }
    )
    assert (env.csrf.active, env.csrf.exempt_paths) == (True, ["/hooks/"])
    assert env.trusted_hosts == ["example.com", "*.example.com"]
    assert env.https_redirect.enabled


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"trusted_hosts": ["*"]}, "trusted_hosts: '\\*' accepts any Host"),
        ({"trusted_hosts": ["*.com"]}, "trusted_hosts: .*admits hosts other people register"),
        ({"csrf": {"exempt_paths": ["/"]}}, "csrf: .*exempts every path"),
        ({"csrf": {"trusted_origins": ["null"]}}, "csrf: .*trusted_origins"),
        ({"https_redirect": {"enabled": True, "exempt_paths": ["health"]}}, "https_redirect: .*is not a path"),
        ({"https_redirect": {"safe_status": 302}}, "https_redirect.safe_status"),
        ({"csrf": "yes"}, "csrf"),
    ],
)
def test_unsafe_settings_are_refused_at_start_up(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=message):
        bg.GuardSettings(**settings)


@pytest.mark.parametrize(
    "module", ["backend_guard._shell_browser", "backend_guard._browser_settings", "backend_guard.asgi._csrf"]
)
def test_the_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert (result.failed, result.attempted > 0) == (0, True)


def test_django_views_marked_csrf_exempt_pass_function_and_class_based() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.test import Client, override_settings
    from django.urls import path
    from django.views import View

    from .django_app import setup

    @csrf_exempt
    def hook(request: HttpRequest) -> HttpResponse:
        return HttpResponse("hook")

    @csrf_exempt
    class ClassHook(View):
        def post(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("class hook")

    def form(request: HttpRequest) -> HttpResponse:
        return HttpResponse("form")

    class URLs:
        urlpatterns = [path("hook", hook), path("class-hook", ClassHook.as_view()), path("form", form)]

    setup()
    with override_settings(
        ROOT_URLCONF=URLs,
        MIDDLEWARE=["backend_guard.django.GuardMiddleware"],
        BACKEND_GUARD={"csrf": True, "trusted_hosts": ["testserver"]},
        ALLOWED_HOSTS=["*"],
    ):
        client = Client()
        assert client.post("/hook", HTTP_ORIGIN=EVIL).content == b"hook"
        assert client.post("/class-hook", HTTP_ORIGIN=EVIL).content == b"class hook"
        refused = client.post("/form", HTTP_ORIGIN=EVIL)
        assert (refused.status_code, refused.json()["code"]) == (403, "cross-origin-request")
        assert client.post("/nowhere", HTTP_ORIGIN=EVIL).status_code == 403  # no view: not exempt
        assert client.post("/form", HTTP_ORIGIN="http://testserver").content == b"form"
        assert client.get("/form", HTTP_HOST="evil.net").status_code == 400


def test_fastapi_documents_the_unknown_host_answer() -> None:
    from fastapi import FastAPI

    from backend_guard.fastapi import install

    app = FastAPI()

    @app.get("/items")
    async def items() -> dict[str, str]:
        return {}

    install(app, bg.GuardSettings(trusted_hosts=["example.com"]))
    assert "400" in app.openapi()["paths"]["/items"]["get"]["responses"]
    plain = FastAPI()
    plain.get("/items")(items)
    install(plain, bg.GuardSettings())
    assert "400" not in plain.openapi()["paths"]["/items"]["get"]["responses"]


def test_fastapi_documents_the_cross_origin_refusal_on_the_operations_it_can_refuse() -> None:
    from fastapi import FastAPI

    from backend_guard.fastapi import install

    def _app() -> FastAPI:
        app = FastAPI()

        @app.get("/items")
        async def items() -> dict[str, str]:
            return {}

        @app.post("/items")
        async def create() -> dict[str, str]:
            return {}

        @app.delete("/items/{item_id}")
        async def delete(item_id: int) -> dict[str, str]:
            return {}

        @app.post("/hooks/stripe")
        @csrf_exempt
        async def stripe() -> dict[str, str]:
            return {}

        @app.post("/public/{name}")
        async def public(name: str) -> dict[str, str]:
            return {}

        return app

    app = _app()
    install(app, bg.GuardSettings(csrf={"exempt_paths": ["/public/"]}))
    paths = app.openapi()["paths"]
    assert "403" in paths["/items"]["post"]["responses"]
    assert "403" in paths["/items/{item_id}"]["delete"]["responses"]
    problem = paths["/items"]["post"]["responses"]["403"]["content"]
    assert "application/problem+json" in problem
    assert "403" not in paths["/items"]["get"]["responses"]  # a safe method is never refused
    assert "403" not in paths["/hooks/stripe"]["post"]["responses"]  # csrf_exempt
    assert "403" not in paths["/public/{name}"]["post"]["responses"]  # an exempt path
    # Cookie tokens switch the protection on: documented too. Without it, no 403 anywhere.
    cookie_app = _app()
    install(cookie_app, bg.GuardSettings(token_cookies=True))
    assert "403" in cookie_app.openapi()["paths"]["/items"]["post"]["responses"]
    plain = _app()
    install(plain, bg.GuardSettings())
    assert all("403" not in op["responses"] for item in plain.openapi()["paths"].values() for op in item.values())


def test_fastapi_cookie_token_routes_document_the_cross_origin_refusal() -> None:
    from fastapi import Depends, FastAPI

    from backend_guard.fastapi import install

    tm = bg.TokenManager("openapi-cookie-tests-" + "k" * 24, "HS256", issuer="https://a", audience="b")
    app = FastAPI()
    install(app, bg.GuardSettings())  # no middleware: the cookies' own check is what answers 403
    cookies = bg.TokenCookies(tm, csrf=bg.CrossOriginProtection())
    header_only = bg.TokenCookies(tm, csrf=bg.CrossOriginProtection(), accept="header")

    @app.get("/me")
    @cookies.require_auth()
    async def me() -> dict[str, str]:
        return {}

    @app.get("/dep")
    async def dep(claims: dict[str, Any] = Depends(cookies.dependency())) -> dict[str, str]:  # noqa: B008
        return {}

    @app.get("/header")
    @header_only.require_auth()
    async def header() -> dict[str, str]:
        return {}

    paths = app.openapi()["paths"]
    for path in ("/me", "/dep"):
        assert {"401", "403"} <= set(paths[path]["get"]["responses"]), path
    assert "401" in paths["/header"]["get"]["responses"]
    assert "403" not in paths["/header"]["get"]["responses"]
