"""One error setting reaches every refusal: with ``errors={"format": "envelope"}`` the stack's layers (rate limit,
cross-origin protection, CORS preflight, unknown host) and the route decorators (``limiter.limit``,
``lock.protect``, ``tm.require_auth``, ``TokenCookies.refresh``) answer in the envelope format, with their status
and headers (``Retry-After``, the request id), in FastAPI, Starlette (``asgi.Guard``), Flask and Django; the
default format stays problem+json."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import Request

import backend_guard as bg
import backend_guard.django as bg_django
import backend_guard.fastapi as bg_fastapi
import backend_guard.flask as bg_flask
from backend_guard import asgi as bg_asgi
from backend_guard import wsgi as bg_wsgi

ORIGIN = "https://app.example.com"
KEY = "envelope-format-tests-secret-0123456789abcdef"


def _config(fmt: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "rate_limit": {"rules": [{"path": "/limited", "limits": "1/minute"}]},
        "trusted_hosts": ["testserver", "localhost"],
        "cors": {"allow_origins": [ORIGIN]},
        "tokens": {"key": KEY, "algorithm": "HS256"},
        "token_cookies": True,
        "lockout": {"max_failures": 1},
    }
    if fmt is not None:
        config["errors"] = {"format": fmt}
    return config


# Each refusal: (name, method, path, headers, json body, requests before it, status, code).
_CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
_PREFLIGHT = {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
REFUSALS = [
    ("rate limit middleware", "GET", "/limited", {}, None, 1, 429, "rate-limited"),
    ("rate limit decorator", "GET", "/deco", {}, None, 1, 429, "rate-limited"),
    ("lockout", "POST", "/login", {}, {"username": "ann"}, 1, 429, "account-locked"),
    ("require_auth", "GET", "/me", {}, None, 0, 401, None),
    ("cookie refresh", "POST", "/auth/refresh", {}, None, 0, 401, None),
    ("csrf", "POST", "/deco", _CROSS_SITE, None, 0, 403, "cross-origin-request"),
    ("cors preflight", "OPTIONS", "/deco", _PREFLIGHT, None, 0, 403, "forbidden"),
    ("unknown host", "GET", "/deco", {"Host": "evil.example"}, None, 0, 400, "unknown-host"),
]
IDS = [r[0] for r in REFUSALS]

Send = Callable[[str, str, dict[str, str], Any], tuple[int, dict[str, str], bytes]]


def _check(refusal: tuple[Any, ...], send: Send, fmt: str | None) -> None:
    name, method, path, headers, body, before, status, code = refusal
    for _ in range(before):
        send(method, path, {}, body)
    got, out, raw = send(method, path, headers, body)
    assert got == status, (name, raw)
    doc = json.loads(raw)
    rid = out.get("x-request-id")
    assert rid
    if fmt == "envelope":
        assert out["content-type"].startswith("application/json"), name
        assert doc["success"] is False
        assert doc["meta"]["request_id"] == rid
        found = doc["error"]["code"]
    else:
        assert out["content-type"].startswith("application/problem+json"), name
        assert doc["status"] == status
        assert doc["request_id"] == rid
        found = doc["code"]
    assert found if code is None else found == code, (name, doc)
    if status == 429:
        assert int(out["retry-after"]) >= 1
        if fmt == "envelope":
            assert doc["error"]["retry_after"] >= 1
    if status == 401:
        assert out["www-authenticate"].startswith("Bearer")


def _login_hooks(lock: bg.Lockout) -> None:
    """The route's own refusal of a wrong password (counted by the lockout)."""
    raise lock.invalid_credentials()


# -- FastAPI (install) and Starlette (asgi.Guard) -----------------------------------------------------------------


def _asgi_send(app: Any) -> Send:
    from starlette.testclient import TestClient

    client = TestClient(app)

    def send(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        r = client.request(method, path, headers=headers, json=body)
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content

    return send


def _fastapi(fmt: str | None) -> Send:
    from fastapi import FastAPI

    app = FastAPI()
    parts = bg_fastapi.install(app, bg.GuardSettings(**_config(fmt)))
    lock, tm, cookies = parts.lockout(), parts.tokens(), parts.token_cookies()

    @app.get("/limited")
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    @app.api_route("/deco", methods=["GET", "POST"])
    @parts.limiter.limit("1/minute")
    async def deco() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    @lock.protect(field="username")
    async def login() -> None:
        _login_hooks(lock)

    @app.get("/me")
    @tm.require_auth()
    async def me() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/auth/refresh")
    def refresh(request: Request) -> Any:
        return cookies.refresh(request)

    return _asgi_send(app)


def _starlette(fmt: str | None) -> Send:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response

    inner = Starlette()
    guard = bg_asgi.Guard(inner, bg.GuardSettings(**_config(fmt)))
    parts = guard.parts
    lock, tm, cookies = parts.lockout(), parts.tokens(), parts.token_cookies()

    async def limited(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @parts.limiter.limit("1/minute")
    async def deco(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @lock.protect(field="username")
    async def login(request: Request) -> Response:
        _login_hooks(lock)
        return JSONResponse({})  # pragma: no cover

    @tm.require_auth()
    async def me(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def refresh(request: Request) -> Response:
        response: Response = await cookies.arefresh(request)
        return response

    inner.add_route("/limited", limited)
    inner.add_route("/deco", deco, methods=["GET", "POST"])
    inner.add_route("/login", login, methods=["POST"])
    inner.add_route("/me", me)
    inner.add_route("/auth/refresh", refresh, methods=["POST"])
    return _asgi_send(guard)


# -- Flask -----------------------------------------------------------------------------------------------------------


def _flask(fmt: str | None) -> Send:
    from flask import Flask, request

    app = Flask(__name__)
    parts = bg_flask.Guard(app, bg.GuardSettings(**_config(fmt))).parts
    assert parts is not None
    lock, tm, cookies = parts.lockout(), parts.tokens(), parts.token_cookies()

    @app.get("/limited")
    def limited() -> Any:
        return {"ok": True}

    @app.route("/deco", methods=["GET", "POST"])
    @parts.limiter.limit("1/minute")
    def deco() -> Any:
        return {"ok": True}

    @app.post("/login")
    @lock.protect(field="username")
    def login() -> Any:
        _login_hooks(lock)

    @app.get("/me")
    @tm.require_auth()
    def me() -> Any:
        return {"ok": True}

    @app.post("/auth/refresh")
    def refresh() -> Any:
        return cookies.refresh(request)

    client = app.test_client()

    def send(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        r = client.open(path, method=method, headers=headers, json=body)
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.data

    return send


# -- Django ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def django_ready() -> None:
    from .django_app import setup

    setup()


def _django_urls() -> Any:
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import path

    parts = bg_django.parts()
    lock, tm, cookies = parts.lockout(), parts.tokens(), parts.token_cookies()

    def limited(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})

    @parts.limiter.limit("1/minute")
    def deco(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})

    @lock.protect(field="username")
    def login(request: HttpRequest) -> HttpResponse:
        _login_hooks(lock)
        return JsonResponse({})  # pragma: no cover

    @tm.require_auth()
    def me(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})

    def refresh(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = cookies.refresh(request)
        return response

    class URLs:
        urlpatterns = [
            path("limited", limited),
            path("deco", deco),
            path("login", login),
            path("me", me),
            path("auth/refresh", refresh),
        ]

    return URLs


def _django_send() -> Send:
    from django.test import Client

    client = Client()

    def send(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body) if body is not None else None
        r = client.generic(method, path, data=data or "", content_type="application/json", headers=headers)
        return r.status_code, {k.lower(): v for k, v in r.items()}, r.content

    return send


def _django_check(refusal: tuple[Any, ...], fmt: str | None) -> None:
    from django.test import override_settings

    # The URLs are built under the settings: their decorators come from the parts GuardMiddleware uses.
    with override_settings(BACKEND_GUARD=_config(fmt), MIDDLEWARE=["backend_guard.django.GuardMiddleware"]):  # noqa: SIM117
        with override_settings(ROOT_URLCONF=_django_urls()):
            _check(refusal, _django_send(), fmt)


# -- the tests -------------------------------------------------------------------------------------------------------

FRAMEWORKS = {"fastapi": _fastapi, "starlette": _starlette, "flask": _flask}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("refusal", REFUSALS, ids=IDS)
@pytest.mark.parametrize("fmt", ["envelope", None])
def test_every_refusal_in_the_configured_format(framework: str, refusal: tuple[Any, ...], fmt: str | None) -> None:
    _check(refusal, FRAMEWORKS[framework](fmt), fmt)


@pytest.mark.parametrize("refusal", REFUSALS, ids=IDS)
@pytest.mark.parametrize("fmt", ["envelope", None])
def test_every_django_refusal_in_the_configured_format(
    django_ready: None, refusal: tuple[Any, ...], fmt: str | None
) -> None:
    _django_check(refusal, fmt)


def test_a_bare_wsgi_guard_renders_its_429_in_the_format() -> None:
    """``wsgi.Guard`` built from settings: the rate limit layer's 429 in the envelope format."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    settings = bg.GuardSettings(errors={"format": "envelope"}, rate_limit={"default_limits": "1/minute"})
    guarded = bg_wsgi.Guard(app, settings)
    seen: list[Any] = []

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen.append((status, {k.lower(): v for k, v in headers}))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "203.0.113.9", "wsgi.url_scheme": "http"}
    b"".join(guarded(dict(environ), start))
    body = b"".join(guarded(dict(environ), start))
    status, headers = seen[-1]
    assert status.startswith("429")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "rate-limited"
    assert int(headers["retry-after"]) >= 1
    assert "ratelimit" in headers


def test_a_shell_alone_keeps_problem_documents() -> None:
    """A middleware built without a policy (no settings) answers problem+json, as before."""
    from starlette.testclient import TestClient

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError

    client = TestClient(bg_asgi.TrustedHostMiddleware(app, policy=bg.TrustedHosts(["example.com"])))
    r = client.get("/")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_a_shell_takes_an_error_policy() -> None:
    """``errors=`` on a middleware used alone: its refusal in that format."""
    from starlette.testclient import TestClient

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError

    shell = bg_asgi.TrustedHostMiddleware(
        app, policy=bg.TrustedHosts(["example.com"]), errors=bg.ErrorPolicy(format="envelope")
    )
    r = TestClient(shell).get("/")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unknown-host"
    with pytest.raises(bg.ConfigurationError):
        bg_asgi.TrustedHostMiddleware(app, policy=["example.com"], errors="envelope")


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        ({"rate_limit": {"default_limits": "1/minute"}}, 429, "rate-limited"),
        ({"trusted_hosts": ["other.example"]}, 400, "unknown-host"),
    ],
    ids=["rate-limit", "unknown-host"],
)
async def test_a_websocket_denial_is_in_the_format(config: dict[str, Any], status: int, code: str) -> None:
    """A layer refusing a handshake sends its denial response in the configured format (with the request id)."""
    from .test_ratelimit_websocket import DENIAL, Socket, _call, _scope

    app = Socket()
    guard = bg_asgi.Guard(app, bg.GuardSettings(errors={"format": "envelope"}, **config))
    if status == 429:
        await _call(guard, _scope("websocket", "/ws", DENIAL))
    refused = await _call(guard, _scope("websocket", "/ws", DENIAL))
    assert refused[0]["type"] == "websocket.http.response.start"
    assert refused[0]["status"] == status
    headers = dict(refused[0]["headers"])
    assert headers[b"content-type"] == b"application/json"
    doc = json.loads(refused[1]["body"])
    assert doc["error"]["code"] == code
    assert doc["meta"]["request_id"] == headers[b"x-request-id"].decode()


def test_a_rate_limit_middleware_takes_its_limiters_policy() -> None:
    """``RateLimiter(errors=policy)``: the middleware on that limiter (used alone) answers in that format too."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    limiter = bg.RateLimiter(errors=bg.ErrorPolicy(format="envelope"))
    shell = bg_wsgi.RateLimitMiddleware(app, limiter=limiter, limits="1/minute")
    seen: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "203.0.113.9", "wsgi.url_scheme": "http"}
    b"".join(shell(dict(environ), lambda status, headers, exc_info=None: seen.append(status)))
    body = b"".join(shell(dict(environ), lambda status, headers, exc_info=None: seen.append(status)))
    assert seen[-1].startswith("429")
    assert json.loads(body)["error"]["code"] == "rate-limited"
