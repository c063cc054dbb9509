"""Review of the ASGI root_path work: what a path-scoped policy judges must be the path the router dispatches.

- a per-route ``SecureHeaders`` override (``policy.route()``) applied without the middleware matches its
  ``no_store_paths`` against the app's own path, as the middleware does (it matched the full path);
- an ``asgi.Guard`` wrapped around a FastAPI app that sets its own ``root_path`` (``FastAPI(root_path="/api")``)
  sees the scope before FastAPI adds the root path, so it judges ``/api/login`` while the router dispatches
  ``/login``: the rule was skipped; the Guard now puts the app's root path on the scope first.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

import backend_guard as bg

from .servers import run_asgi


def _account_app() -> Any:
    from fastapi import FastAPI

    policy = bg.SecureHeaders(no_store_paths=["/account"])
    app = FastAPI()

    @app.get("/account")
    @policy.route()
    def account() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/news")
    @policy.route()
    def news() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.server
@pytest.mark.parametrize("root_path", ["", "/api"])
def test_a_route_override_alone_sends_no_store_on_the_apps_own_path_under_a_root_path(root_path: str) -> None:
    with run_asgi(_account_app(), root_path=root_path) as url:
        assert httpx.get(url + "/account").headers.get("cache-control") == "no-store"
        assert httpx.get(url + "/news").headers.get("cache-control") is None


@pytest.mark.server
def test_a_guard_around_a_fastapi_app_with_its_own_root_path_limits_the_route_it_dispatches() -> None:
    from fastapi import FastAPI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FastAPI 0.12x+ deprecates root_path=; the supported floor has it
        app = FastAPI(root_path="/api")

    @app.get("/login")
    def login() -> dict[str, bool]:
        return {"ok": True}

    guard = bg.asgi.Guard(app, bg.GuardSettings(rate_limit={"rules": [{"path": "/login", "limits": "2/minute"}]}))
    with run_asgi(guard) as url:
        # Both spellings reach the same route (FastAPI strips its root path from /api/login): one limit.
        assert httpx.get(url + "/api/login").json() == {"ok": True}
        assert httpx.get(url + "/login").json() == {"ok": True}
        assert [httpx.get(url + path).status_code for path in ("/api/login", "/login")] == [429, 429]


async def test_a_websocket_error_is_logged_with_a_websocket_label_not_an_empty_method(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from backend_guard.asgi import ErrorEnvelopeMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    scope = {"type": "websocket", "path": "/ws", "root_path": "", "headers": [], "extensions": {}}
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        await ErrorEnvelopeMiddleware(app)(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    (record,) = caplog.records
    assert "in WEBSOCKET /ws" in record.getMessage()


@pytest.mark.server
def test_a_guard_around_a_fastapi_app_with_its_own_root_path_limits_its_websocket_handshakes() -> None:
    from fastapi import FastAPI
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = FastAPI(root_path="/api")

    async def socket(ws: Any) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    app.router.add_websocket_route("/ws", socket)  # a Starlette route: no annotation for FastAPI to resolve

    guard = bg.asgi.Guard(app, bg.GuardSettings(rate_limit={"rules": [{"path": "/ws", "limits": "1/minute"}]}))
    with run_asgi(guard) as url:
        base = url.replace("http://", "ws://")
        with connect(base + "/api/ws", open_timeout=5) as ws:
            assert ws.recv(timeout=5) == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(base + "/api/ws", open_timeout=5)
        assert refused.value.response.status_code == 429


# -- Django mounted under a script name: the override matches the path the middleware matches -----------------------


def _django_views() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, setup

    setup()
    override = bg.SecureHeaders(no_store_paths=["/app/sh-account"])

    @override.route()
    def overridden(request: HttpRequest) -> HttpResponse:
        return HttpResponse("o")

    def plain(request: HttpRequest) -> HttpResponse:
        return HttpResponse("p")

    add_urls(path("sh-account", overridden), path("sh-plain", plain))


async def _django_asgi(path: str, root_path: str) -> str | None:
    """The ``Cache-Control`` Django's ASGI handler answers ``path`` with, under ``root_path``."""
    import asyncio

    from django.core.handlers.asgi import ASGIHandler

    scope = {"type": "http", "method": "GET", "path": path, "root_path": root_path, "query_string": b"",
             "headers": [(b"host", b"testserver")], "client": ("192.0.2.7", 5000), "server": ("testserver", 80),
             "scheme": "http", "http_version": "1.1", "asgi": {"version": "3.0"}}  # fmt: skip
    first = [{"type": "http.request", "body": b""}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if first:
            return first.pop()
        await asyncio.sleep(3600)  # no disconnect while the handler answers
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ASGIHandler()(scope, receive, send)
    found = {k.lower(): v for k, v in sent[0]["headers"]}.get(b"cache-control")
    return None if found is None else found.decode()


MOUNTS = [
    pytest.param("asgi", "/app/{}", "/app", None, id="asgi-root-path-in-path"),
    pytest.param("asgi", "/{}", "/app", None, id="asgi-prefix-stripped-by-the-server"),
    pytest.param("asgi", "/{}", "", "/app", id="asgi-force-script-name"),
    pytest.param("wsgi", "/{}", "/app", None, id="wsgi-script-name"),
]


@pytest.mark.parametrize(("handler", "path", "script", "force"), MOUNTS)
async def test_a_django_route_override_matches_the_path_the_middleware_matches(
    handler: str, path: str, script: str, force: str | None
) -> None:
    """Django's ``GuardMiddleware`` matches ``SCRIPT_NAME + PATH_INFO`` (the script name as Django resolves it,
    ``FORCE_SCRIPT_NAME`` included); a ``policy.route()`` override alone matched ``request.path``, which under ASGI
    lacks the script name when the server strips the prefix or ``FORCE_SCRIPT_NAME`` sets it."""
    from django.test import Client, override_settings

    _django_views()
    guard = {"secure_headers": {"no_store_paths": ["/app/sh-plain"]}}

    async def cache_control(view: str, middleware: list[str]) -> str | None:
        with override_settings(MIDDLEWARE=middleware, FORCE_SCRIPT_NAME=force, BACKEND_GUARD=guard):
            if handler == "asgi":
                return await _django_asgi(path.format(view), script)
            found: str | None = Client().get(path.format(view), SCRIPT_NAME=script).headers.get("Cache-Control")
            return found

    # Django 4.2's ASGI request leaves FORCE_SCRIPT_NAME out of SCRIPT_NAME and its path (5.x puts it in): there
    # the full path is /sh-plain, and the middleware and the override alone both judge that one.
    expected = "no-store" if _script_name_reaches_the_request(handler, force) else None
    assert await cache_control("sh-plain", ["backend_guard.django.GuardMiddleware"]) == expected
    assert await cache_control("sh-account", []) == expected  # the override alone, the same full path


def _script_name_reaches_the_request(handler: str, force: str | None) -> bool:
    """Whether this Django gives the request the script name the test mounts it under (FORCE_SCRIPT_NAME under
    ASGI: Django 5.0 and later)."""
    if handler != "asgi" or force is None:
        return True
    import io

    from django.core.handlers.asgi import ASGIRequest
    from django.test import override_settings

    scope = {"type": "http", "method": "GET", "path": "/x", "root_path": "", "query_string": b"", "headers": []}
    with override_settings(FORCE_SCRIPT_NAME=force):
        return bool(ASGIRequest(scope, io.BytesIO()).META["SCRIPT_NAME"] == force)


def test_the_django_asgi_adapter_path_is_the_environ_path_the_shells_matched_after_a_later_rewrite() -> None:
    """The adapter's path is the one ``GuardMiddleware``'s shells matched (``META`` SCRIPT_NAME + PATH_INFO), under
    ASGI as under WSGI: a middleware listed after it that rewrites ``request.path_info`` (a tenant prefix) must not
    make a route override judge ``no_store_paths`` on another path than the middleware judged."""
    import io

    from django.core.handlers.asgi import ASGIRequest

    from backend_guard.integrations._adapter_django import DjangoAdapter
    from backend_guard.integrations._guard_django import _shell_environ

    from .django_app import setup

    setup()
    scope = {"type": "http", "method": "GET", "path": "/app/t/acme/account", "root_path": "/app", "query_string": b"",
             "headers": [(b"host", b"testserver")], "server": ("testserver", 80), "scheme": "http"}  # fmt: skip
    request = ASGIRequest(scope, io.BytesIO())
    environ = _shell_environ(request)
    matched = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
    request.path_info = "/account"  # a later middleware strips the tenant prefix
    assert matched == "/app/t/acme/account"
    assert DjangoAdapter().view(request, None).path == matched
