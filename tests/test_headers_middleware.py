"""SecureHeadersMiddleware (ASGI and WSGI): headers on every status, nonces, overrides, trusted proxies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend_guard.asgi._headers import SecureHeadersMiddleware
from backend_guard.clientip import ClientIP
from backend_guard.headers import NONCE_KEY, ContentSecurityPolicy, SecureHeaders, csp_nonce
from backend_guard.wsgi._headers import SecureHeadersMiddleware as WSGISecureHeadersMiddleware

from .conftest import free_port

WEB = SecureHeaders(preset="web", no_store_paths=["/account"])
DOCS = SecureHeaders(
    preset="web",
    csp=ContentSecurityPolicy(default_src=["'self'"], script_src=["'self'", "https://cdn.example"]),
)
EXPECTED = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
)


def check_secure(headers: httpx.Headers) -> None:
    for name in EXPECTED:
        assert len(headers.get_list(name)) == 1, name


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def home(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def page(request: Request) -> Response:
        nonce = csp_nonce(request)
        return HTMLResponse(f'<script nonce="{nonce}">1</script>')

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def framed(request: Request) -> Response:
        return PlainTextResponse("x", headers={"X-Frame-Options": "SAMEORIGIN", "Server": "leaky/1.0"})

    @DOCS.route()
    async def docs(request: Request) -> Response:
        return HTMLResponse("docs", headers={"Content-Security-Policy": "default-src *"})

    @DOCS.route()
    async def docs_nonce(request: Request) -> Response:
        return HTMLResponse(csp_nonce(request))

    async def account(request: Request) -> Response:
        return JSONResponse({"secret": 1})

    return Starlette(
        routes=[
            Route("/", home),
            Route("/page", page),
            Route("/boom", boom),
            Route("/framed", framed),
            Route("/docs", docs),
            Route("/docs-nonce", docs_nonce),
            Route("/account/keys", account),
        ]
    )


def client_for(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/", 200), ("GET", "/nope", 404), ("POST", "/", 405), ("GET", "/boom", 500)]
)
async def test_asgi_headers_on_every_status(method: str, path: str, status: int) -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app(), policy=WEB)) as client:
        r = await client.request(method, path)
    assert r.status_code == status
    check_secure(r.headers)
    assert "nonce" not in r.headers["content-security-policy"]
    assert "strict-transport-security" not in r.headers  # plain http


async def test_asgi_default_policy_is_api() -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app())) as client:
        r = await client.get("/")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


async def test_asgi_nonce_is_lazy_and_per_response() -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app(), policy=WEB)) as client:
        first = await client.get("/page")
        second = await client.get("/page")
        plain = await client.get("/")
    n1 = first.text.split('"')[1]
    n2 = second.text.split('"')[1]
    assert n1 != n2
    assert f"'nonce-{n1}' 'strict-dynamic'" in first.headers["content-security-policy"]
    assert f"'nonce-{n2}'" in second.headers["content-security-policy"]
    assert n1 not in second.headers["content-security-policy"]
    assert "nonce" not in plain.headers["content-security-policy"]


async def test_asgi_app_headers_win_and_disclosure_removed() -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app(), policy=WEB)) as client:
        r = await client.get("/framed")
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert "server" not in r.headers


async def test_asgi_route_override_replaces_never_duplicates() -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app(), policy=WEB)) as client:
        r = await client.get("/docs")
        n = await client.get("/docs-nonce")
        page = await client.get("/page")
    assert r.headers.get_list("content-security-policy") == [
        "default-src 'self'; script-src 'self' https://cdn.example"
    ]
    assert n.headers.get_list("content-security-policy") == [
        "default-src 'self'; script-src 'self' https://cdn.example"
    ]
    assert "'strict-dynamic'" in page.headers["content-security-policy"]  # the override stayed on its route


async def test_route_override_without_the_middleware() -> None:
    async with client_for(starlette_app()) as client:
        r = await client.get("/docs")
    assert r.headers.get_list("content-security-policy") == [
        "default-src 'self'; script-src 'self' https://cdn.example"
    ]
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_asgi_no_store_on_sensitive_paths() -> None:
    async with client_for(SecureHeadersMiddleware(starlette_app(), policy=WEB)) as client:
        assert (await client.get("/account/keys")).headers["cache-control"] == "no-store"
        assert "cache-control" not in (await client.get("/")).headers


async def test_asgi_hsts_through_trusted_proxies_only() -> None:
    trusted = SecureHeadersMiddleware(starlette_app(), client_ip=ClientIP(["127.0.0.1"]))
    untrusted = SecureHeadersMiddleware(starlette_app(), client_ip=ClientIP(["10.0.0.0/8"]))
    proto = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    async with client_for(trusted) as client:
        assert "strict-transport-security" in (await client.get("/", headers=proto)).headers
        assert "strict-transport-security" not in (await client.get("/")).headers
    async with client_for(untrusted) as client:
        assert "strict-transport-security" not in (await client.get("/", headers=proto)).headers
    async with client_for(SecureHeadersMiddleware(starlette_app()), base_url="https://testserver") as client:
        assert "strict-transport-security" in (await client.get("/")).headers


async def test_asgi_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    await SecureHeadersMiddleware(app)({"type": "lifespan"}, receive, send)
    await SecureHeadersMiddleware(app)({"type": "websocket", "path": "/"}, receive, send)
    assert seen == ["lifespan", "websocket"]
    assert sent == [{"type": "lifespan.startup.complete"}] * 2


async def test_asgi_only_response_start_is_touched_and_state_is_made() -> None:
    messages: list[Any] = []
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        csp_nonce(scope)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"hi"})

    async def send(message: Any) -> None:
        messages.append(message)

    async def receive() -> Any:
        return {"type": "http.request"}

    await SecureHeadersMiddleware(app, policy=WEB)({"type": "http", "path": "/", "scheme": "http"}, receive, send)
    nonce = scopes[0]["state"][NONCE_KEY]
    assert any(k == b"content-security-policy" and f"'nonce-{nonce}'".encode() in v for k, v in messages[0]["headers"])
    assert messages[1] == {"type": "http.response.body", "body": b"hi"}


# -- a real server -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        SecureHeadersMiddleware(starlette_app(), policy=WEB),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.mark.server
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/page", 200), ("GET", "/nope", 404), ("POST", "/", 405), ("GET", "/boom", 500)],
)
def test_real_server_every_status(uvicorn_url: str, method: str, path: str, status: int) -> None:
    r = httpx.request(method, uvicorn_url + path)
    assert r.status_code == status
    check_secure(r.headers)


# -- WSGI ----------------------------------------------------------------------------------------------------------


def flask_app() -> Any:
    import flask

    from backend_guard.integrations._headers_jinja import init_flask

    app = flask.Flask(__name__)
    init_flask(app)

    @app.get("/")
    def home() -> Any:
        return {"ok": True}

    @app.get("/page")
    def page() -> Any:
        return flask.render_template_string('<script nonce="{{ csp_nonce() }}">1</script>')

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("boom")

    @app.get("/docs")
    @DOCS.route()
    def docs() -> Any:
        return flask.Response("docs", headers={"Content-Security-Policy": "default-src *"})

    @app.get("/framed")
    def framed() -> Any:
        return flask.Response("x", headers={"X-Frame-Options": "SAMEORIGIN", "X-Powered-By": "Flask"})

    app.wsgi_app = WSGISecureHeadersMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, policy=WEB, client_ip=ClientIP(["127.0.0.1"])
    )
    return app


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/", 200), ("GET", "/nope", 404), ("POST", "/", 405), ("GET", "/boom", 500)]
)
def test_wsgi_flask_headers_on_every_status(method: str, path: str, status: int) -> None:
    r = flask_app().test_client().open(path, method=method)
    assert r.status_code == status
    for name in EXPECTED:
        assert len(r.headers.getlist(name)) == 1, name
    assert "Strict-Transport-Security" not in r.headers


def test_wsgi_flask_nonce_override_and_proxy() -> None:
    client = flask_app().test_client()
    r1, r2 = client.get("/page"), client.get("/page")
    n1, n2 = r1.text.split('"')[1], r2.text.split('"')[1]
    assert n1 != n2
    assert f"'nonce-{n1}'" in r1.headers["Content-Security-Policy"]
    assert n1 not in r2.headers["Content-Security-Policy"]
    docs = client.get("/docs")
    assert docs.headers.getlist("Content-Security-Policy") == [
        "default-src 'self'; script-src 'self' https://cdn.example"
    ]
    framed = client.get("/framed")
    assert framed.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert "X-Powered-By" not in framed.headers
    proxied = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=")


def test_wsgi_exc_info_is_passed_on() -> None:
    calls: list[tuple[Any, ...]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            raise ValueError("x")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"x"]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        calls.append((status, headers, exc_info))

    body = WSGISecureHeadersMiddleware(app)({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response)
    assert list(body) == [b"x"]
    status, headers, exc_info = calls[0]
    assert status.startswith("500")
    assert exc_info is not None
    assert exc_info[0] is ValueError
    assert dict(headers)["X-Content-Type-Options"] == "nosniff"


def test_wsgi_django_nonce_and_headers() -> None:
    from .test_headers import _django_ready

    _django_ready()
    import sys
    import types

    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpRequest, HttpResponse
    from django.test import override_settings
    from django.urls import path

    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse(csp_nonce(request))

    module = types.ModuleType("tests._headers_django_urls")
    module.urlpatterns = [path("page", page)]  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    app = WSGISecureHeadersMiddleware(WSGIHandler(), policy=WEB)
    import werkzeug.test

    with override_settings(ROOT_URLCONF=module.__name__):
        client = werkzeug.test.Client(app)
        r = client.get("/page")
        missing = client.get("/missing")
    assert f"'nonce-{r.text}'" in r.headers["Content-Security-Policy"]
    assert missing.status_code == 404
    assert "nonce" not in missing.headers["Content-Security-Policy"]


@pytest.mark.parametrize("content_type", [b"application/json", b"text/html"])
async def test_an_app_sending_its_headers_as_a_one_shot_iterable_keeps_them(content_type: bytes) -> None:
    # ASGI allows any iterable of pairs: the policy reads them several times (the kind of response, the names).
    own = [(b"content-type", content_type), (b"x-own", b"1")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": (pair for pair in own)})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "scheme": "https", "path": "/", "headers": [], "client": ("192.0.2.1", 1)}
    await SecureHeadersMiddleware(app)(scope, receive, send)
    names = [k for k, _ in sent[0]["headers"]]
    assert names[:2] == [b"content-type", b"x-own"]
    assert b"content-security-policy" in names
    policy = SecureHeaders()
    assert policy.merge_raw((p for p in own), secure=True, path="/") == policy.merge_raw(own, secure=True, path="/")
    text = [(k.decode(), v.decode()) for k, v in own]
    assert policy.merge_str((p for p in text), secure=True, path="/") == policy.merge_str(text, secure=True, path="/")
