"""One setting reaches every part: the limiter, lockout, tokens and password hasher a view uses are the ones the
settings describe, on the stack's one store, the same object on every call, in every framework.

Django's accessor is exercised through a real server (wsgiref, tests/servers.py) with ``GuardMiddleware``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import backend_guard as bg
from backend_guard._stack import StackParts

from .servers import run_wsgi

LOCKOUT = {"max_failures": 2, "account_max_failures": None}


def test_the_limiter_is_a_rate_limiter_on_the_shared_store_with_no_rate_limit_settings() -> None:
    parts = StackParts.build(bg.GuardSettings())
    assert isinstance(parts.limiter, bg.RateLimiter)
    assert parts.limiter.store is parts.store
    assert parts.rate_limit is False  # nothing to limit by rule: the middleware stays off


def test_each_configured_part_is_built_once_and_then_shared() -> None:
    settings = bg.GuardSettings(lockout=LOCKOUT, tokens={"key": "k" * 32, "algorithm": "HS256"})
    parts = StackParts.build(settings)
    assert parts.lockout() is parts.lockout()
    assert parts.tokens() is parts.tokens()
    assert parts.passwords() is parts.passwords() is parts.hasher()
    # the one lockout's state is what every view sees: two failures lock, whichever call built the object
    parts.lockout().record_failure("alice", "203.0.113.1")
    parts.lockout().record_failure("alice", "203.0.113.1")
    assert parts.lockout().check("alice", "203.0.113.1").locked


def test_the_passwords_settings_build_the_hasher_a_view_gets() -> None:
    parts = StackParts.build(bg.GuardSettings(passwords={"memory_cost": 65536, "time_cost": 3}))
    assert "m=65536,t=3" in parts.passwords().hash("correct horse battery staple")


def test_fastapi_install_with_default_settings_gives_a_limiter_whose_decorator_limits() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import backend_guard.fastapi

    app = FastAPI()
    guard = backend_guard.fastapi.install(app)

    @app.get("/search")
    @guard.limiter.limit("2/minute")
    async def search() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        assert [client.get("/search").status_code for _ in range(3)] == [200, 200, 429]


def test_flask_parts_are_the_guard_s_and_its_lockout_follows_the_config() -> None:
    from flask import Flask

    import backend_guard.flask

    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = {"lockout": LOCKOUT}
    guard = backend_guard.flask.Guard(app)
    with app.app_context():
        parts = backend_guard.flask.parts()
    assert parts is guard.parts is backend_guard.flask.parts(app)
    lock = parts.lockout()
    assert lock is backend_guard.flask.parts(app).lockout()

    @app.post("/login")
    @lock.protect()
    def login() -> tuple[dict[str, bool], int]:
        return {"ok": False}, 401

    client = app.test_client()
    assert [client.post("/login", json={"username": "alice"}).status_code for _ in range(3)] == [401, 401, 429]


def test_flask_parts_of_an_app_without_the_guard_is_a_configuration_error() -> None:
    from flask import Flask

    import backend_guard.flask

    with pytest.raises(bg.ConfigurationError, match="Guard"):
        backend_guard.flask.parts(Flask(__name__))


@pytest.fixture
def django_login() -> Iterator[str]:
    """A Django server whose login view is guarded by the lockout ``backend_guard.django.parts()`` returns."""
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import path

    import backend_guard.django
    from tests.django_app import add_urls, setup, wsgi_app

    setup()
    settings.BACKEND_GUARD = {"lockout": LOCKOUT}
    try:
        handler = wsgi_app(["backend_guard.django.GuardMiddleware"])
        guard = backend_guard.django.parts()  # what a views.py does at import
        lock = guard.lockout()

        @lock.protect()
        def login(request: Any) -> JsonResponse:
            return JsonResponse({"ok": False}, status=401)

        @guard.limiter.limit("2/minute")
        def search(request: Any) -> JsonResponse:
            # the accessor at request time: still the middleware's parts and the same lockout
            same = backend_guard.django.parts() is backend_guard.django.GuardMiddleware.parts
            return JsonResponse({"same": same and backend_guard.django.parts().lockout() is lock})

        base = f"c{uuid.uuid4().hex[:8]}"
        add_urls(path(f"{base}/login", login), path(f"{base}/search", search))
        with run_wsgi(handler, server="wsgiref") as url:
            yield f"{url}/{base}"
    finally:
        del settings.BACKEND_GUARD


@pytest.mark.server
def test_django_lockout_max_failures_setting_locks_a_view_using_the_accessor(django_login: str) -> None:
    with httpx.Client(timeout=10) as http:
        statuses = [http.post(django_login + "/login", json={"username": "alice"}).status_code for _ in range(3)]
        searches = [http.get(django_login + "/search") for _ in range(3)]
    assert statuses == [401, 401, 429]  # BACKEND_GUARD["lockout"]["max_failures"] = 2
    assert [r.status_code for r in searches] == [200, 200, 429]
    assert searches[0].json() == {"same": True}
