"""One route decorator mechanism across FastAPI, Starlette, Flask and Django, sync and async."""

from __future__ import annotations

import sys
import types
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from backend_guard._routes import RouteCall, RouteHooks, guard_route
from backend_guard.exceptions import RateLimited


class Recorder(RouteHooks):
    """Refuses when X-Deny is sent; otherwise tags the response and records the route template."""

    def __init__(self) -> None:
        self.routes: list[str | None] = []
        self.statuses: list[int] = []

    def before(self, call: RouteCall) -> None:
        self.routes.append(call.view.route)
        call.set_attr("guard_seen", True)
        call.add_header("X-Guard", "on")
        if call.view.header("x-deny"):
            raise RateLimited(retry_after=7)

    def after(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        self.statuses.append(status)
        return [("X-Guard-After", str(status))]


def _check_refusal(status: int, headers: Any, body: bytes) -> None:
    assert status == 429
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "7"
    assert headers["x-guard"] == "on"
    assert b'"code":"rate-limited"' in body


# -- FastAPI ---------------------------------------------------------------------------------------------------


class Item(BaseModel):
    id: int
    name: str


def _fastapi_app(hooks: Recorder, decorated: bool) -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    deco = guard_route(hooks) if decorated else (lambda f: f)

    @app.get("/items/{item_id}", response_model=Item)
    @deco
    async def get_item(item_id: int, q: str | None = None) -> Item:
        return Item(id=item_id, name=q or "x")

    @app.post("/sync/{n}")
    @deco
    def sync_route(n: int, item: Item) -> dict[str, Any]:
        return {"n": n, "item": item.name}

    return app


def test_fastapi_async_and_sync_routes() -> None:
    from fastapi.testclient import TestClient

    hooks = Recorder()
    with TestClient(_fastapi_app(hooks, True)) as client:
        r = client.get("/items/3?q=hi")
        assert r.status_code == 200
        assert r.json() == {"id": 3, "name": "hi"}
        assert r.headers["x-guard"] == "on"
        assert r.headers["x-guard-after"] == "200"
        r = client.post("/sync/5", json={"id": 1, "name": "n"})
        assert r.json() == {"n": 5, "item": "n"}
        assert r.headers["x-guard-after"] == "200"
        r = client.get("/items/4", headers={"x-deny": "1"})
        _check_refusal(r.status_code, r.headers, r.content)
    assert hooks.routes == ["/items/{item_id}", "/sync/{n}", "/items/{item_id}"]


def test_fastapi_openapi_is_unchanged_by_the_decorator() -> None:
    plain = _fastapi_app(Recorder(), False).openapi()
    guarded = _fastapi_app(Recorder(), True).openapi()
    assert guarded == plain


def test_fastapi_validation_still_works() -> None:
    from fastapi.testclient import TestClient

    with TestClient(_fastapi_app(Recorder(), True)) as client:
        assert client.get("/items/not-a-number").status_code == 422


def test_stacked_decorators_each_run_once() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    first, second = Recorder(), Recorder()
    app = FastAPI()

    @app.get("/s/{x}")
    @guard_route(first)
    @guard_route(second)
    async def stacked(x: int) -> dict[str, int]:
        return {"x": x}

    with TestClient(app) as client:
        assert client.get("/s/1").json() == {"x": 1}
    assert first.routes == ["/s/{x}"]
    assert second.routes == ["/s/{x}"]


# -- Starlette --------------------------------------------------------------------------------------------------


def test_starlette_routes_sync_and_async() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    hooks = Recorder()

    @guard_route(hooks)
    async def user(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["uid"], "seen": request.state.guard_seen})

    @guard_route(hooks)
    def boom(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=418)

    app = Starlette(routes=[Route("/users/{uid}", user), Route("/boom", boom)])
    with TestClient(app) as client:
        r = client.get("/users/9")
        assert r.json() == {"id": "9", "seen": True}
        assert r.headers["x-guard-after"] == "200"
        assert client.get("/boom").headers["x-guard-after"] == "418"
        r = client.get("/users/1", headers={"x-deny": "1"})
        _check_refusal(r.status_code, r.headers, r.content)
    assert hooks.routes == ["/users/{uid}", "/boom", "/users/{uid}"]


# -- Flask ---------------------------------------------------------------------------------------------------------


def test_flask_routes_sync_and_async() -> None:
    pytest.importorskip("asgiref")
    from flask import Flask, g

    hooks = Recorder()
    app = Flask(__name__)

    @app.get("/users/<int:uid>")
    @guard_route(hooks)
    def user(uid: int) -> Any:
        return {"id": uid, "seen": g.guard_seen}

    @app.get("/tuple")
    @guard_route(hooks)
    def as_tuple() -> Any:
        return "made", 201

    @app.get("/async/<name>")
    @guard_route(hooks)
    async def async_user(name: str) -> Any:
        return {"name": name}

    @app.get("/raise")
    @guard_route(hooks)
    def raising() -> Any:
        from werkzeug.exceptions import Forbidden

        raise Forbidden()

    client = app.test_client()
    r = client.get("/users/4")
    assert r.json == {"id": 4, "seen": True}
    assert r.headers["x-guard-after"] == "200"
    r = client.get("/tuple")
    assert r.status_code == 201
    assert r.headers["x-guard-after"] == "201"
    assert client.get("/async/bo").json == {"name": "bo"}
    r = client.get("/raise")
    assert r.status_code == 403
    assert hooks.statuses[-1] == 403
    assert r.headers["x-guard-after"] == "403"  # the hooks' fields reach the response Flask makes of the error
    r = client.get("/users/1", headers={"x-deny": "1"})
    _check_refusal(r.status_code, r.headers, r.data)
    assert hooks.routes[0] == "/users/<int:uid>"


def test_a_flask_error_response_of_a_rate_limited_route_carries_its_rate_limit_fields() -> None:
    # As Flask-Limiter's after_request: an abort(404) or an error handler's answer still tells the client its
    # budget, on a real server (waitress); the route's own budget was spent on it.
    from flask import Flask, abort

    import backend_guard as bg

    from .servers import run_wsgi

    limiter = bg.RateLimiter()
    app = Flask(__name__)

    @app.errorhandler(409)
    def conflict(_: Exception) -> Any:
        return {"error": "conflict"}, 409

    @app.get("/items/<int:item>")
    @limiter.limit("3/minute")
    def item(item: int) -> Any:
        if item == 0:
            abort(404)
        if item == 1:
            abort(409)
        return {"item": item}

    with run_wsgi(app) as url:
        statuses, budgets = [], []
        for n in (0, 1, 2, 2):
            r = httpx.get(f"{url}/items/{n}")
            statuses.append(r.status_code)
            budgets.append(r.headers.get("ratelimit", ""))
    assert statuses == [404, 409, 200, 429]
    assert [b.split(";")[1] for b in budgets] == ["r=2", "r=1", "r=0", "r=0"]
    assert all(b.startswith('"/items/<int:item>"') for b in budgets)


def test_an_exception_a_flask_route_catches_leaves_no_fields_on_its_answer() -> None:
    # A decorated helper that aborts, its error caught by the route: the route's own budget is the answer's.
    from flask import Flask, abort

    import backend_guard as bg

    limiter = bg.RateLimiter()
    app = Flask(__name__)

    @limiter.limit("3/minute", scope="helper")
    def helper() -> None:
        abort(404)

    @app.get("/a")
    @limiter.limit("10/minute")
    def a() -> Any:
        try:
            helper()
        except Exception:  # noqa: BLE001 (the point: the route carries on)
            return "caught"
        return "not reached"

    r = app.test_client().get("/a")
    assert r.status_code == 200
    assert r.headers["RateLimit"].startswith('"/a";r=9;')


def test_a_fastapi_http_exception_of_a_rate_limited_route_carries_its_fields_and_its_own() -> None:
    # raise HTTPException(401, headers=...) in a decorated route: the response keeps the exception's own headers
    # and gains the route's RateLimit fields, on a real server (uvicorn), with or without backend_guard's handlers.
    from fastapi import FastAPI, HTTPException

    import backend_guard as bg
    import backend_guard.fastapi

    from .servers import run_asgi

    for install in (False, True):
        limiter = bg.RateLimiter()
        app = FastAPI()
        if install:
            backend_guard.fastapi.install(app, bg.GuardSettings(rate_limit={"enabled": False}))

        @app.get("/me")
        @limiter.limit("3/minute")
        async def me(request: Request) -> Any:
            raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})

        with run_asgi(app) as url:
            r = httpx.get(f"{url}/me")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["ratelimit"].startswith('"/me";r=2;')
        assert r.headers["ratelimit-policy"] == '"/me";q=3;w=60'


# -- Django --------------------------------------------------------------------------------------------------------


def _django_urls(hooks: Recorder) -> types.ModuleType:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only-not-secret",  # noqa: S106
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="tests.test_routes_urls_placeholder",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import path
    from django.views import View

    @guard_route(hooks)
    def user(request: HttpRequest, uid: int) -> HttpResponse:
        return JsonResponse({"id": uid, "seen": request.guard_seen})  # type: ignore[attr-defined]

    @guard_route(hooks)
    async def async_user(request: HttpRequest, uid: int) -> HttpResponse:
        return JsonResponse({"id": uid})

    class Thing(View):
        @guard_route(hooks)
        def get(self, request: HttpRequest, slug: str) -> HttpResponse:
            return HttpResponse(slug, status=202)

    module = types.ModuleType("tests._routes_django_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("users/<int:uid>/", user),
        path("ausers/<int:uid>/", async_user),
        path("things/<slug:slug>/", Thing.as_view()),
    ]
    sys.modules[module.__name__] = module
    return module


def test_django_function_async_and_class_views() -> None:
    hooks = Recorder()
    urls = _django_urls(hooks)
    from django.test import Client, override_settings

    with override_settings(ROOT_URLCONF=urls.__name__):
        client = Client()
        r = client.get("/users/5/")
        assert r.json() == {"id": 5, "seen": True}
        assert r["X-Guard-After"] == "200"
        assert client.get("/ausers/6/").json() == {"id": 6}
        r = client.get("/things/abc/")
        assert r.status_code == 202
        assert r["X-Guard-After"] == "202"
        r = client.get("/users/1/", HTTP_X_DENY="1")
        _check_refusal(r.status_code, {k.lower(): v for k, v in r.items()}, r.content)
    assert hooks.routes[:3] == ["/users/<int:uid>/", "/ausers/<int:uid>/", "/things/<slug:slug>/"]


def test_calling_without_a_request_is_a_clear_type_error() -> None:
    @guard_route(Recorder())
    def lonely() -> None:
        return None

    with pytest.raises(TypeError, match="without a request"):
        lonely()


def test_fastapi_dependency_refuses_and_adds_headers() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from backend_guard._routes import fastapi_dependency

    hooks = Recorder()
    app = FastAPI()

    @app.get("/dep/{x}", dependencies=[Depends(fastapi_dependency(hooks))])
    async def dep(x: int) -> dict[str, int]:
        return {"x": x}

    with TestClient(app) as client:
        r = client.get("/dep/3")
        assert r.status_code == 200
        assert r.json() == {"x": 3}
        assert r.headers["x-guard"] == "on"
        r = client.get("/dep/3", headers={"x-deny": "1"})
        assert r.status_code == 429
        assert r.headers["retry-after"] == "7"
    assert hooks.routes == ["/dep/{x}", "/dep/{x}"]
    assert "bg_request__" not in str(app.openapi())


def test_fastapi_route_with_its_own_request_and_response_parameters() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    hooks = Recorder()
    app = FastAPI()

    @app.get("/own/{x}")
    @guard_route(hooks)
    async def own(x: int, request: Request, response: Response) -> dict[str, Any]:
        response.headers["x-own"] = "1"
        return {"x": x, "seen": request.state.guard_seen}

    @app.get("/own-sync")
    @guard_route(hooks)
    def own_sync(req: Request) -> dict[str, str]:
        return {"path": req.url.path}

    with TestClient(app) as client:
        r = client.get("/own/2")
        assert r.json() == {"x": 2, "seen": True}
        assert r.headers["x-own"] == "1"
        assert r.headers["x-guard"] == "on"
        assert client.get("/own-sync").json() == {"path": "/own-sync"}
    assert hooks.routes == ["/own/{x}", "/own-sync"]
