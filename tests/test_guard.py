"""The whole stack (Guard) through real servers: every response, errors included, carries every header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import backend_guard as bg
from backend_guard import asgi as bg_asgi
from backend_guard import wsgi as bg_wsgi

from .servers import run_asgi, run_wsgi

pytestmark = pytest.mark.server

ORIGIN = "https://app.example.com"


def _settings() -> bg.GuardSettings:
    return bg.GuardSettings(
        cors={"allow_origins": [ORIGIN], "allow_methods": ["GET", "POST"]},
        rate_limit={"rules": [{"path": "/limited", "limits": "2/minute"}]},
    )


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("secret-123")

    return Starlette(routes=[Route("/ok", ok), Route("/limited", ok), Route("/boom", boom)])


def _flask_app() -> Any:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/ok")
    def ok() -> Any:
        return {"ok": True}

    @app.get("/limited")
    def limited() -> Any:
        return {"ok": True}

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("secret-123")

    return app


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def base_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "asgi":
        with run_asgi(bg_asgi.Guard(_starlette_app(), _settings())) as url:
            yield url
    else:
        app = _flask_app()
        app.wsgi_app = bg_wsgi.Guard(app.wsgi_app, _settings())  # type: ignore[method-assign]
        with run_wsgi(app) as url:
            yield url


def _check_common(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in r.headers
    assert len(r.headers["x-request-id"]) >= 8
    assert "origin" in r.headers.get("vary", "").lower()
    assert r.headers.get("access-control-allow-origin") == ORIGIN


def test_every_status_carries_every_header(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"Origin": ORIGIN}) as client:
        ok = client.get("/ok")
        assert ok.status_code == 200
        _check_common(ok)
        missing = client.get("/nope")
        assert missing.status_code == 404
        _check_common(missing)
        wrong_method = client.delete("/ok")
        assert wrong_method.status_code == 405
        _check_common(wrong_method)
        boom = client.get("/boom")
        assert boom.status_code == 500
        _check_common(boom)
        body = boom.json()
        assert body["status"] == 500
        assert body["request_id"] == boom.headers["x-request-id"]
        assert "secret-123" not in boom.text
        assert boom.headers["content-type"].startswith("application/problem+json")
        statuses = [client.get("/limited").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = client.get("/limited")
        _check_common(limited)
        assert int(limited.headers["retry-after"]) > 0
        assert json.loads(limited.text)["code"] == "rate-limited"


def test_preflight_is_answered_before_the_app(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        r = client.options("/ok", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in r.headers
        bad = client.options("/ok", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert bad.status_code == 403
        assert not [h for h in bad.headers if h.lower().startswith("access-control-allow")]


def test_incoming_request_id_kept_when_safe(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        assert client.get("/ok", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
        for bad in ("a" * 300, "<script>", "id with spaces"):
            assert client.get("/ok", headers={"X-Request-ID": bad}).headers["x-request-id"] != bad


def test_guard_error_raised_in_a_plain_starlette_route_keeps_its_status() -> None:
    """Starlette sends its own 500 page and then re-raises; the exception must decide the answer."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def limited(request: Request) -> JSONResponse:
        raise bg.RateLimited(retry_after=5)

    async def denied(request: Request) -> JSONResponse:
        raise bg.InvalidCredentials()

    async def deliberate(request: Request) -> JSONResponse:
        return JSONResponse({"maintenance": True}, status_code=503)

    app = Starlette(routes=[Route("/limited", limited), Route("/denied", denied), Route("/down", deliberate)])
    with run_asgi(bg_asgi.Guard(app)) as url, httpx.Client(base_url=url) as client:
        r = client.get("/limited")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "5"
        assert r.json()["code"] == "rate-limited"
        r = client.get("/denied")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = client.get("/down")
        assert r.status_code == 503
        assert r.json() == {"maintenance": True}  # the app's own JSON 5xx is left alone
        assert r.headers["x-content-type-options"] == "nosniff"
        assert client.get("/limited").status_code == 429  # the connection is still good


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_guard_rule_for_get_counts_head_in_the_same_bucket(kind: str) -> None:
    settings = bg.GuardSettings(rate_limit={"rules": [{"path": "/limited", "limits": "2/minute", "methods": ["GET"]}]})
    if kind == "asgi":
        server = run_asgi(bg_asgi.Guard(_starlette_app(), settings))
    else:
        app = _flask_app()
        app.wsgi_app = bg_wsgi.Guard(app.wsgi_app, settings)  # type: ignore[method-assign]
        server = run_wsgi(app)
    with server as url, httpx.Client(base_url=url) as client:
        statuses = [client.request(method, "/limited").status_code for method in ("GET", "HEAD", "GET", "HEAD")]
    assert statuses == [200, 200, 429, 429]
