"""Rate limit rules that can never match are refused at start-up, with a message naming the rule.

At construction: a path not starting with ``/``, a query or fragment in the path, an unknown HTTP method.
Against the app's routes, through each framework's real start-up path: the ASGI lifespan (a real uvicorn and
Starlette's TestClient) for FastAPI/Starlette, the first request for Flask and Django (real servers).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard.ratelimit import KnownRoutes, RateLimitRule, check_rule_routes

from .servers import run_wsgi

# -- at construction ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "suggested"),
    [("login", "/login"), ("api/*", "/api/*"), ("/login?next=/", "/login"), ("/login#top", "/login")],
)
def test_a_rule_path_no_request_path_can_match_is_refused_with_the_fix(path: str, suggested: str) -> None:
    with pytest.raises(bg.ConfigurationError) as caught:
        RateLimitRule(path, "5/minute")
    assert repr(path) in caught.value.detail
    assert f"did you mean {suggested!r}" in caught.value.detail


def test_an_unknown_method_is_refused_with_the_nearest_standard_one() -> None:
    with pytest.raises(bg.ConfigurationError) as caught:
        RateLimitRule("/login", "5/minute", methods=["PSOT"])
    assert "'/login'" in caught.value.detail
    assert "'PSOT'" in caught.value.detail
    assert "did you mean 'POST'" in caught.value.detail


def test_settings_refuse_an_unknown_method_naming_the_section_and_the_rule() -> None:
    with pytest.raises(bg.ConfigurationError, match=r"rate_limit.*'/login'.*'PSOT'"):
        bg.GuardSettings(rate_limit={"rules": [{"path": "/login", "limits": "5/minute", "methods": ["PSOT"]}]})


def test_a_custom_method_is_accepted_only_when_the_rule_opts_in() -> None:
    with pytest.raises(bg.ConfigurationError, match="custom_methods"):
        RateLimitRule("/dav", "5/minute", methods=["PROPFIND"])
    rule = RateLimitRule("/dav", "5/minute", methods=["PROPFIND"], custom_methods=True)
    assert rule.matches("PROPFIND", "/dav")
    with pytest.raises(bg.ConfigurationError, match="not an HTTP method"):
        RateLimitRule("/dav", "5/minute", methods=["PROP FIND"], custom_methods=True)


def test_standard_methods_in_any_case_are_accepted() -> None:
    rule = RateLimitRule("/login", "5/minute", methods=["post", "Get", "HEAD", "patch"])
    assert rule.matches("POST", "/login")


def test_methods_given_as_a_one_shot_iterator_are_read_once() -> None:
    # A generator read by the type check, then again for the method set, left the rule matching no method at
    # all (the route silently unlimited) and its methods unchecked.
    rule = RateLimitRule("/login", "5/minute", methods=(m for m in ["POST"]))
    assert rule.matches("POST", "/login")
    assert not rule.matches("GET", "/login")
    assert RateLimitRule("/x", "5/minute", methods=iter(["GET"])).matches("HEAD", "/x")
    with pytest.raises(bg.ConfigurationError, match="PSOT"):
        RateLimitRule("/login", "5/minute", methods=iter(["PSOT"]))


# -- the sans-IO check against known routes --------------------------------------------------------------------

_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)


@given(st.lists(_segment, min_size=1, max_size=4))
def test_a_rule_naming_a_route_passes_and_its_near_misses_are_refused_with_the_route_suggested(
    segments: list[str],
) -> None:
    route = "/" + "/".join(segments)
    routes = KnownRoutes(lambda p: p == route, (route,))
    check_rule_routes([RateLimitRule(route, "5/minute")], routes)
    misses = {route + "/"} | ({route.upper()} if route.upper() != route else set())
    for miss in misses:
        with pytest.raises(bg.ConfigurationError) as caught:
            check_rule_routes([RateLimitRule(miss, "5/minute")], routes)
        assert f"rule {miss!r} matches no route" in caught.value.detail
        assert f"did you mean {route!r}" in caught.value.detail


def test_an_incomplete_route_list_never_refuses_a_pattern_rule_it_cannot_judge() -> None:
    routes = KnownRoutes(lambda p: False, (), complete=False)
    check_rule_routes([RateLimitRule("/api/*", "5/minute"), RateLimitRule("/u/{id}", "5/minute")], routes)
    with pytest.raises(bg.ConfigurationError):
        check_rule_routes([RateLimitRule("/login", "5/minute")], routes)


# -- FastAPI / Starlette: the lifespan startup --------------------------------------------------------------


def _fastapi(rule_path: str, *, check_routes: bool = True) -> Any:
    from fastapi import FastAPI

    import backend_guard.fastapi

    app = FastAPI()
    rules = [{"path": rule_path, "limits": "2/minute", "methods": ["POST"]}]
    backend_guard.fastapi.install(app, bg.GuardSettings(rate_limit={"rules": rules, "check_routes": check_routes}))

    @app.post("/login")  # added after install, as apps usually do: the check runs when the app starts
    async def login() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize("rule_path", ["/Login", "/login/"])
def test_fastapi_startup_fails_on_a_rule_matching_no_route(rule_path: str) -> None:
    from fastapi.testclient import TestClient

    with pytest.raises(bg.ConfigurationError) as caught, TestClient(_fastapi(rule_path)):
        pass
    assert f"rule {rule_path!r} matches no route" in caught.value.detail
    assert "did you mean '/login'" in caught.value.detail


def test_fastapi_starts_and_limits_with_a_rule_naming_a_route_added_after_install() -> None:
    from fastapi.testclient import TestClient

    with TestClient(_fastapi("/login")) as client:
        assert [client.post("/login").status_code for _ in range(3)] == [200, 200, 429]


def test_fastapi_starts_with_a_mismatched_rule_when_the_route_check_is_off() -> None:
    from fastapi.testclient import TestClient

    with TestClient(_fastapi("/login/", check_routes=False)) as client:
        assert client.post("/login").status_code == 200


@pytest.mark.server
def test_uvicorn_refuses_to_start_an_app_whose_rule_matches_no_route(caplog: pytest.LogCaptureFixture) -> None:
    import uvicorn

    server = uvicorn.Server(
        # log_level: uvicorn sets its loggers' level from it (another test's "critical" would silence the failure)
        uvicorn.Config(
            _fastapi("/Login"),
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_config=None,
            log_level="error",
            loop="asyncio",
        )
    )
    # uvicorn logs the lifespan failure on "uvicorn.error"; an earlier test's logging config may have stopped
    # that logger propagating to the root, so listen on it directly.
    uvicorn_log = logging.getLogger("uvicorn.error")
    was_disabled, uvicorn_log.disabled = uvicorn_log.disabled, False  # a dictConfig may have disabled it
    uvicorn_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
            server.run()  # the startup fails: uvicorn exits before serving anything
    finally:
        uvicorn_log.removeHandler(caplog.handler)
        uvicorn_log.disabled = was_disabled
    assert exited.value.code == 3  # uvicorn's STARTUP_FAILURE
    assert not server.started
    assert any("rule '/Login' matches no route" in r.getMessage() for r in caplog.records)


# -- Flask: the first request ----------------------------------------------------------------------------------


def _flask(rule_path: str) -> Any:
    from flask import Flask

    import backend_guard.flask

    guard = backend_guard.flask.Guard()
    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = {"rate_limit": {"rules": [{"path": rule_path, "limits": "2/minute"}]}}
    guard.init_app(app)

    @app.post("/login")  # an app factory registers its routes after init_app
    def login() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.server
def test_flask_refuses_every_request_while_a_rule_matches_no_route(caplog: pytest.LogCaptureFixture) -> None:
    app = _flask("/login/")
    with caplog.at_level(logging.ERROR), run_wsgi(app, server="wsgiref") as url, httpx.Client(timeout=10) as http:
        statuses = [http.post(url + "/login").status_code for _ in range(2)]
    assert statuses == [500, 500]
    logged = "\n".join(f"{r.getMessage()} {r.exc_info[1] if r.exc_info else ''}" for r in caplog.records)
    assert "rule '/login/' matches no route" in logged
    assert "did you mean '/login'" in logged


@pytest.mark.server
def test_flask_serves_and_limits_with_a_rule_naming_its_route() -> None:
    with run_wsgi(_flask("/login"), server="wsgiref") as url, httpx.Client(timeout=10) as http:
        assert [http.post(url + "/login").status_code for _ in range(3)] == [200, 200, 429]


# -- Django: the first request ------------------------------------------------------------------------------


@pytest.fixture
def django_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A Django server with GuardMiddleware and one rule, ``request.param`` written for the route ``/<base>/login``."""
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import path

    from tests.django_app import add_urls, setup, wsgi_app

    def login(request: Any) -> JsonResponse:
        return JsonResponse({"ok": True})

    setup()
    base = f"r{uuid.uuid4().hex[:8]}"
    add_urls(path(f"{base}/login", login))
    rule_path = str(request.param).format(base=base)
    settings.BACKEND_GUARD = {"rate_limit": {"rules": [{"path": rule_path, "limits": "2/minute"}]}}
    try:
        handler = wsgi_app(["backend_guard.django.GuardMiddleware"])
        with run_wsgi(handler, server="wsgiref") as url:
            yield f"{url}/{base}", rule_path
    finally:
        del settings.BACKEND_GUARD


@pytest.mark.server
@pytest.mark.parametrize("django_server", ["/{base}/login/", "/{base}/LOGIN"], indirect=True)
def test_django_refuses_every_request_while_a_rule_matches_no_url_pattern(
    django_server: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, rule_path = django_server
    with caplog.at_level(logging.ERROR), httpx.Client(timeout=10) as http:
        answers = [http.post(url + "/login", headers={"Accept": "application/json"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [500, 500]
    for answer in answers:  # the stack's own 500: a problem document with its headers, nothing of the error in it
        assert answer.headers["content-type"] == "application/problem+json", answer.headers
        assert answer.headers.get("x-request-id")
        assert answer.headers.get("content-security-policy")
        assert "matches no route" not in answer.text
    logged = "\n".join(str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert f"rule {rule_path!r} matches no route" in logged
    assert "did you mean '/" in logged


@pytest.mark.server
@pytest.mark.parametrize("django_server", ["/{base}/login"], indirect=True)
def test_django_serves_and_limits_with_a_rule_naming_its_url_pattern(django_server: tuple[str, str]) -> None:
    url, _ = django_server
    with httpx.Client(timeout=10) as http:
        assert [http.post(url + "/login").status_code for _ in range(3)] == [200, 200, 429]
