"""The browser-session layers through real servers on loopback: FastAPI and Starlette under uvicorn (with a real
WebSocket client for cross-site WebSocket hijacking), Flask and Django under waitress.

Each framework gets its stack from ``GuardSettings(csrf=..., trusted_hosts=[...], https_redirect=...)`` through
its one documented call: ``backend_guard.fastapi.install``, ``asgi.Guard``, the Flask extension, Django's
``GuardMiddleware``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from fastapi import WebSocket as FastAPIWebSocket  # module level: FastAPI resolves the annotation here

import backend_guard as bg
from backend_guard.csrf import csrf_exempt

from .servers import run_asgi, run_wsgi

pytestmark = pytest.mark.server

EVIL = "https://evil.example"
BROWSER: dict[str, Any] = {"trusted_hosts": ["127.0.0.1"], "csrf": {"exempt_paths": ["/hooks/"]}}
REDIRECT: dict[str, Any] = {"https_redirect": {"enabled": True, "exempt_paths": ["/health"]}}


def _starlette(settings: bg.GuardSettings, *, install: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def form(request: Any) -> PlainTextResponse:
        return PlainTextResponse("form")

    @csrf_exempt
    async def hook(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hook")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    routes = [
        Route("/form", form, methods=["GET", "POST"]),
        Route("/hook", hook, methods=["POST"]),
        Route("/hooks/github", hook, methods=["POST"]),
        Route("/health", form),
        WebSocketRoute("/ws", socket),
    ]
    app = Starlette(routes=routes)
    if install:
        from backend_guard.fastapi import install as install_stack

        install_stack(app, settings)
        return app
    return bg.asgi.Guard(app, settings) if not install else app


def _fastapi(settings: bg.GuardSettings) -> Any:
    from fastapi import FastAPI

    from backend_guard.fastapi import install

    app = FastAPI()

    @app.api_route("/form", methods=["GET", "POST"])
    async def form() -> str:
        return "form"

    @app.post("/hook")
    @csrf_exempt
    async def hook() -> str:
        return "hook"

    @app.post("/hooks/github")
    async def github() -> str:
        return "hook"

    @app.get("/health")
    async def health() -> str:
        return "form"

    @app.websocket("/ws")
    async def socket(websocket: FastAPIWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    install(app, settings)
    return app


def _flask(settings: bg.GuardSettings) -> Any:
    from flask import Flask

    from backend_guard.flask import Guard

    app = Flask(__name__)

    @app.route("/form", methods=["GET", "POST"])
    def form() -> str:
        return "form"

    @app.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "hook"

    @app.post("/hooks/github")
    def github() -> str:
        return "hook"

    @app.get("/health")
    def health() -> str:
        return "form"

    Guard(app, settings)
    return app


def _django_urls() -> Any:
    from django.http import HttpResponse
    from django.urls import path

    def form(request: Any) -> HttpResponse:
        return HttpResponse("form")

    @csrf_exempt
    def hook(request: Any) -> HttpResponse:
        return HttpResponse("hook")

    class URLs:
        urlpatterns = [
            path("form", form),
            path("hook", hook),
            path("hooks/github", hook),
            path("health", form),
        ]

    return URLs


def _django(settings: bg.GuardSettings) -> Iterator[Any]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from .django_app import setup

    setup()
    with override_settings(
        ROOT_URLCONF=_django_urls(),
        MIDDLEWARE=["backend_guard.django.GuardMiddleware"],
        BACKEND_GUARD=settings,
        ALLOWED_HOSTS=["*"],
    ):
        yield WSGIHandler()


def _serve(framework: str, settings: bg.GuardSettings) -> AbstractContextManager[str]:
    if framework == "starlette":
        return run_asgi(_starlette(settings, install=False))
    if framework == "starlette-install":
        return run_asgi(_starlette(settings, install=True))
    if framework == "fastapi":
        return run_asgi(_fastapi(settings))
    if framework == "flask":
        return run_wsgi(_flask(settings))
    return _django_server(settings)


class _django_server(AbstractContextManager[str]):  # noqa: N801
    def __init__(self, settings: bg.GuardSettings) -> None:
        self._handlers = _django(settings)
        self._server: Any = None

    def __enter__(self) -> str:
        handler = next(self._handlers)
        self._server = run_wsgi(handler)
        url: str = self._server.__enter__()
        return url

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(*exc)
        for _ in self._handlers:
            pass


FRAMEWORKS = ["starlette", "starlette-install", "fastapi", "flask", "django"]


def _problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    code: str = response.json()["code"]
    return code


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cross_origin_requests_and_hosts_through_a_real_server(framework: str) -> None:
    with _serve(framework, bg.GuardSettings(**BROWSER)) as url:
        same = url  # http://127.0.0.1:PORT
        with httpx.Client(base_url=url) as client:
            refused = client.post("/form", headers={"Origin": EVIL})
            assert refused.status_code == 403
            assert _problem_code(refused) == "cross-origin-request"
            assert refused.headers["x-request-id"]
            fetch = client.post("/form", headers={"Sec-Fetch-Site": "cross-site", "Origin": EVIL})
            assert fetch.status_code == 403
            assert client.post("/form", headers={"Origin": same}).text.strip('"') == "form"
            assert client.post("/form", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
            assert client.post("/form").status_code == 200  # no browser headers
            assert client.get("/form", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}).status_code == 200
            assert client.post("/hook", headers={"Origin": EVIL}).status_code == 200  # csrf_exempt view
            assert client.post("/hooks/github", headers={"Origin": EVIL}).status_code == 200  # exempt path
            unknown = client.get("/form", headers={"Host": "evil.net"})
            assert unknown.status_code == 400
            assert _problem_code(unknown) == "unknown-host"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_https_redirect_through_a_real_server(framework: str) -> None:
    with _serve(framework, bg.GuardSettings(**BROWSER, **REDIRECT)) as url:
        host = url.removeprefix("http://").split(":")[0]
        with httpx.Client(base_url=url, follow_redirects=False) as client:
            get = client.get("/form?a=1")
            assert (get.status_code, get.headers["location"]) == (301, f"https://{host}/form?a=1")
            assert get.content == b""
            post = client.post("/form")
            assert (post.status_code, post.headers["location"]) == (308, f"https://{host}/form")
            assert client.get("/health").status_code == 200


@pytest.mark.parametrize("framework", ["starlette", "starlette-install", "fastapi"])
def test_a_cross_site_websocket_is_refused_before_accept(framework: str) -> None:
    pytest.importorskip("websockets")
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with _serve(framework, bg.GuardSettings(**BROWSER)) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url, origin=url, open_timeout=5) as socket:  # type: ignore[arg-type]
            assert socket.recv(timeout=5) == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin=EVIL, open_timeout=5)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        # uvicorn offers the WebSocket denial response: the refusal is the problem document
        assert b'"code":"cross-origin-request"' in (refused.value.response.body or b"")
        with pytest.raises(InvalidStatus) as unknown:
            connect(ws_url, origin=url, additional_headers={"Host": "evil.net"}, open_timeout=5)  # type: ignore[arg-type]
        assert unknown.value.response.status_code in (400, 403)
