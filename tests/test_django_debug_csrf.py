"""Django as Django users expect, through a real server: with ``DEBUG = True`` a browser still gets Django's
technical 500 page (API clients a problem document), and a CSRF failure's 403 says Django's reason in ``detail``
without ever echoing the Origin or Referer the client sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .servers import run_asgi, run_wsgi

SECRET = "s3cr3t-in-the-message"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PROBLEM = "application/problem+json"
STACKS = {
    "guard": ["backend_guard.django.GuardMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
    "errors": [
        "backend_guard.django.RequestIdMiddleware",
        "backend_guard.django.ErrorEnvelopeMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
}
BAD_ORIGIN_DETAIL = "Origin checking failed - the request's Origin does not match any trusted origins."


def _urls() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, setup

    setup()

    def boom(request: HttpRequest) -> HttpResponse:
        raise RuntimeError(SECRET)

    def form(request: HttpRequest) -> HttpResponse:
        return HttpResponse("saved")

    add_urls(path("debug/boom", boom), path("debug/form", form))


@contextmanager
def _server(stack: str, *, asgi: bool = False, **settings: Any) -> Iterator[str]:
    """A Django server with this middleware stack; ``settings`` overridden while it runs (and built)."""
    from django.test.utils import override_settings

    from .django_app import asgi_app, wsgi_app

    _urls()
    with override_settings(**settings):
        if asgi:
            with run_asgi(asgi_app(STACKS[stack])) as url:
                yield url
        else:
            with run_wsgi(wsgi_app(STACKS[stack])) as url:
                yield url


# -- DEBUG: Django's technical 500 page for browsers -------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_with_debug_a_browser_gets_djangos_technical_500_page(stack: str) -> None:
    with _server(stack, DEBUG=True) as url:
        r = httpx.get(url + "/debug/boom", headers={"Accept": BROWSER})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert "Traceback" in r.text
    assert "RuntimeError" in r.text


def test_with_debug_a_browser_gets_the_technical_500_page_under_asgi_too() -> None:
    with _server("errors", asgi=True, DEBUG=True) as url:
        r = httpx.get(url + "/debug/boom", headers={"Accept": BROWSER})
    assert r.status_code == 500
    assert "Traceback" in r.text


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/json, text/html"])
def test_with_debug_an_api_client_still_gets_a_problem_document_without_traceback(stack: str, accept: str) -> None:
    with _server(stack, DEBUG=True) as url:
        r = httpx.get(url + "/debug/boom", headers={"Accept": accept})
    assert (r.status_code, r.headers["content-type"]) == (500, PROBLEM)
    assert r.json()["code"] == "internal-error"
    assert "Traceback" not in r.text
    assert SECRET not in r.text


@pytest.mark.parametrize("stack", STACKS)
def test_without_debug_a_browser_gets_the_problem_document_as_before(stack: str) -> None:
    with _server(stack, DEBUG=False) as url:
        r = httpx.get(url + "/debug/boom", headers={"Accept": BROWSER})
    assert (r.status_code, r.headers["content-type"]) == (500, PROBLEM)
    assert SECRET not in r.text


def test_with_debug_rewrite_always_gives_a_browser_the_problem_document_too() -> None:
    with _server("errors", DEBUG=True, BACKEND_GUARD={"errors": {"rewrite_plain_errors": "always"}}) as url:
        r = httpx.get(url + "/debug/boom", headers={"Accept": BROWSER})
    assert (r.status_code, r.headers["content-type"]) == (500, PROBLEM)
    assert "Traceback" not in r.text


# -- CSRF failures say why ---------------------------------------------------------------------------------------

CSRF_VIEW = {"CSRF_FAILURE_VIEW": "backend_guard.django.csrf_failure"}
COOKIE = "a" * 32  # a well-formed CSRF secret


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("cookies", "data", "headers", "detail"),
    [
        ({}, {}, {}, "CSRF cookie not set."),
        ({"csrftoken": COOKIE}, {}, {}, "CSRF token missing."),
        ({"csrftoken": COOKIE}, {"csrfmiddlewaretoken": "short"}, {}, "CSRF token from POST has incorrect length."),
        (
            {"csrftoken": COOKIE},
            {},
            {"X-CSRFToken": "!" * 32},
            "CSRF token from the 'X-Csrftoken' HTTP header has invalid characters.",
        ),
        ({"csrftoken": "x"}, {}, {}, "CSRF cookie has incorrect length."),
    ],
)
def test_a_csrf_failure_is_a_403_problem_naming_djangos_reason(
    stack: str, cookies: dict[str, str], data: dict[str, str], headers: dict[str, str], detail: str
) -> None:
    with _server(stack, **CSRF_VIEW) as url, httpx.Client(base_url=url, cookies=cookies) as client:
        r = client.post("/debug/form", data=data, headers={"Accept": "application/json", **headers})
    assert (r.status_code, r.headers["content-type"]) == (403, PROBLEM)
    assert r.json()["detail"] == detail


@pytest.mark.parametrize("stack", STACKS)
def test_a_bad_origin_is_named_without_echoing_the_origin_the_client_sent(stack: str) -> None:
    origin = "https://evil-attacker.example"
    with _server(stack, **CSRF_VIEW) as url:
        r = httpx.post(url + "/debug/form", headers={"Origin": origin, "Accept": "application/json"})
    assert (r.status_code, r.headers["content-type"]) == (403, PROBLEM)
    assert r.json()["detail"] == BAD_ORIGIN_DETAIL
    assert "evil-attacker" not in r.text


@pytest.mark.parametrize("stack", STACKS)
def test_a_browser_still_gets_djangos_own_csrf_page(stack: str) -> None:
    with _server(stack, **CSRF_VIEW) as url:
        r = httpx.post(url + "/debug/form", headers={"Accept": BROWSER})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "CSRF verification failed" in r.text


@given(st.text(max_size=200))
def test_no_origin_or_referer_a_client_sends_reaches_the_detail(sent: str) -> None:
    from django.middleware.csrf import REASON_BAD_ORIGIN, REASON_BAD_REFERER

    from backend_guard.django import csrf_failure_detail

    _urls()
    assert csrf_failure_detail(REASON_BAD_ORIGIN % sent) == BAD_ORIGIN_DETAIL
    assert csrf_failure_detail(REASON_BAD_REFERER % sent) == (
        "Referer checking failed - the request's Referer does not match any trusted origins."
    )


@pytest.mark.parametrize(
    "reason",
    ["", "Custom reason quoting https://evil.example", "CSRF token from the 'X-<script>' HTTP header incorrect."],
)
def test_a_reason_django_never_writes_becomes_a_generic_detail(reason: str) -> None:
    from backend_guard.django import csrf_failure_detail

    _urls()
    assert csrf_failure_detail(reason) == "CSRF verification failed."
