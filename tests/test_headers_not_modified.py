"""A ``304 Not Modified`` keeps the cached page's headers: through real servers, every shell.

A browser copies a 304's headers, the CSP included, onto the response it cached (Chromium; WPT
``304-response-should-update-csp``). A 304 has no Content-Type, so under the default ``api`` preset it used to
get the API profile (``default-src 'none'; form-action 'none'``, ``Referrer-Policy: no-referrer``), and the
revalidated page lost its styles, scripts and form. A 304 now carries no header that differs between a page
and an API response; the 200 keeps its document CSP. Every server is started and stopped by the test, on
127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .servers import run_asgi, run_wsgi

pytestmark = pytest.mark.server

PAGE = "<!doctype html><title>t</title><p>cached page</p>"
PROFILE_HEADERS = ("content-security-policy", "referrer-policy", "permissions-policy", "origin-agent-cluster")


def _assert_revalidation_keeps_the_pages_headers(url: str) -> None:
    """A 200 with the document CSP, then a 304 to its revalidation carrying none of the profile's headers."""
    with httpx.Client() as client:
        first = client.get(url)
        assert first.status_code == 200
        assert "form-action 'self'" in first.headers["content-security-policy"]
        assert first.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        tag = first.headers["etag"]
        again = client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert [h for h in PROFILE_HEADERS if h in again.headers] == []
    assert again.headers["x-content-type-options"] == "nosniff"  # the same for every response: kept
    assert again.headers["x-frame-options"] == "DENY"


# -- Django: ConditionalGetMiddleware ------------------------------------------------------------------------------


@contextmanager
def _django(asgi: bool, stack: str) -> Iterator[str]:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, asgi_app, setup, wsgi_app

    setup()

    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse(PAGE)  # text/html; ConditionalGetMiddleware sets its ETag and answers 304s

    add_urls(path("conditional/page", page))
    middleware = [f"backend_guard.django.{stack}", "django.middleware.http.ConditionalGetMiddleware"]
    if asgi:
        with run_asgi(asgi_app(middleware)) as url:
            yield url + "/conditional/page"
    else:
        with run_wsgi(wsgi_app(middleware)) as url:
            yield url + "/conditional/page"


@pytest.mark.parametrize("stack", ["GuardMiddleware", "SecureHeadersMiddleware"])
@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_a_django_304_from_conditional_get_keeps_the_cached_pages_csp(asgi: bool, stack: str) -> None:
    with _django(asgi, stack) as url:
        _assert_revalidation_keeps_the_pages_headers(url)


# -- Starlette: StaticFiles ----------------------------------------------------------------------------------------


def _starlette(directory: Path, fused: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from backend_guard.asgi import Guard, SecureHeadersMiddleware

    (directory / "page.html").write_text(PAGE)
    app = Starlette(routes=[Mount("/static", StaticFiles(directory=directory))])
    return Guard(app) if fused else SecureHeadersMiddleware(app)


@pytest.mark.parametrize("fused", [True, False], ids=["Guard", "SecureHeadersMiddleware"])
def test_a_starlette_staticfiles_304_keeps_the_cached_pages_csp(tmp_path: Path, fused: bool) -> None:
    with run_asgi(_starlette(tmp_path, fused)) as url:
        _assert_revalidation_keeps_the_pages_headers(url + "/static/page.html")
        # and again: what the fused Guard remembered for the 304 is not the page's, nor the other way round
        _assert_revalidation_keeps_the_pages_headers(url + "/static/page.html")


# -- Flask: werkzeug's conditional responses -----------------------------------------------------------------------


def test_a_flask_conditional_304_keeps_the_cached_pages_csp() -> None:
    from flask import Flask, Response, request

    import backend_guard.flask

    app = Flask(__name__)
    backend_guard.flask.Guard(app)

    @app.get("/page")
    def page() -> Response:
        response = Response(PAGE, mimetype="text/html")
        response.set_etag("v1")
        return response.make_conditional(request)

    with run_wsgi(app) as url:
        _assert_revalidation_keeps_the_pages_headers(url + "/page")


# -- A route's own policy (policy.route()) without the middleware ------------------------------------------------


def test_a_304_from_a_route_with_its_own_policy_gets_no_csp_either() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from backend_guard import SecureHeaders

    @SecureHeaders().route()
    async def page(request: Request) -> Response:
        return Response(status_code=304, headers={"ETag": '"v1"'})

    with run_asgi(Starlette(routes=[Route("/page", page)])) as url:
        r = httpx.get(url + "/page")
    assert r.status_code == 304
    assert [h for h in PROFILE_HEADERS if h in r.headers] == []
    assert r.headers["x-content-type-options"] == "nosniff"
