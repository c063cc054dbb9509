"""Django's ``csrf_exempt`` is judged on the view of the URLconf that really dispatches the request.

A middleware listed after ``GuardMiddleware`` may set ``request.urlconf`` (django-hosts'
``HostsRequestMiddleware``, multi-tenant apps). The exemption must come from that URLconf, not from
``ROOT_URLCONF``: here the same paths map to an exempt view in one and to a protected view in the other, and a
cross-site ``POST`` is refused exactly when the view Django calls is protected. Through Django's test clients
(WSGI and ASGI handlers) and through waitress.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import View

import backend_guard as bg
from backend_guard import events
from backend_guard.csrf import csrf_exempt
from backend_guard.events import Event

from .servers import run_wsgi

EVIL = "https://evil.example"
TENANT = "tenant.example"
#: Requests that reached a view, by name: a refused request must reach none.
CALLED: list[str] = []


def _view(name: str) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        CALLED.append(name)
        return HttpResponse(name)

    return view


@csrf_exempt
def root_hook(request: HttpRequest) -> HttpResponse:
    CALLED.append("root-hook")
    return HttpResponse("root-hook")


@csrf_exempt
def tenant_hook(request: HttpRequest) -> HttpResponse:
    CALLED.append("tenant-hook")
    return HttpResponse("tenant-hook")


@csrf_exempt
class TenantClassHook(View):
    def post(self, request: HttpRequest) -> HttpResponse:
        CALLED.append("tenant-class-hook")
        return HttpResponse("tenant-class-hook")


class RootURLs:
    """``ROOT_URLCONF``: ``/transfer`` is an exempt webhook here, ``/hook`` and ``/class-hook`` are protected."""

    urlpatterns = [
        path("transfer", root_hook),
        path("hook", _view("root-form")),
        path("class-hook", _view("root-form")),
        path("tenant-only-hook", _view("root-form")),
    ]


class TenantURLs:
    """The tenant's URLconf (set in ``request.urlconf``): the other way round."""

    urlpatterns = [
        path("transfer", _view("tenant-transfer")),
        path("hook", tenant_hook),
        path("class-hook", TenantClassHook.as_view()),
        path("tenant-only-hook", tenant_hook),
    ]


class TenantURLconfMiddleware:
    """Sets ``request.urlconf`` for the tenant's host (or ``X-Tenant``), as django-hosts' ``HostsRequestMiddleware``
    does."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.get_host().split(":")[0] == TENANT or request.headers.get("X-Tenant"):
            request.urlconf = TenantURLs
        response: HttpResponse = self.get_response(request)
        return response


MIDDLEWARE = ["backend_guard.django.GuardMiddleware", f"{__name__}.TenantURLconfMiddleware"]


@pytest.fixture
def django_settings() -> Iterator[None]:
    from django.test import override_settings

    from .django_app import setup

    setup()
    CALLED.clear()
    with override_settings(
        ROOT_URLCONF=RootURLs,
        MIDDLEWARE=MIDDLEWARE,
        BACKEND_GUARD={"csrf": True},
        ALLOWED_HOSTS=["*"],
    ):
        yield


def _refused(response: Any) -> bool:
    return (
        response.status_code == 403
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["code"] == "cross-origin-request"
    )


@pytest.mark.usefixtures("django_settings")
def test_a_view_protected_in_the_real_urlconf_is_refused_although_root_urlconf_exempts_it() -> None:
    from django.test import Client

    client = Client()
    found: list[Event] = []
    with events.subscribe(found.append):
        forged = client.post("/transfer", HTTP_HOST=TENANT, HTTP_ORIGIN=EVIL)
    assert _refused(forged)
    assert CALLED == []  # the tenant's protected view never ran
    assert [(e.name, dict(e.fields)) for e in found] == [
        ("csrf.refused", {"rule": "origin-mismatch", "websocket": False})
    ]
    assert client.post("/transfer", HTTP_HOST=TENANT, HTTP_SEC_FETCH_SITE="cross-site").status_code == 403
    # the same path without the tenant's URLconf: ROOT_URLCONF's exempt webhook
    assert client.post("/transfer", HTTP_ORIGIN=EVIL).content == b"root-hook"
    # the tenant's own page still posts to it
    assert client.post("/transfer", HTTP_HOST=TENANT, HTTP_ORIGIN=f"http://{TENANT}").content == b"tenant-transfer"


@pytest.mark.usefixtures("django_settings")
def test_a_view_exempt_in_the_real_urlconf_passes_although_root_urlconf_protects_it() -> None:
    from django.test import Client

    client = Client()
    assert client.post("/hook", HTTP_HOST=TENANT, HTTP_ORIGIN=EVIL).content == b"tenant-hook"
    assert client.post("/class-hook", HTTP_HOST=TENANT, HTTP_ORIGIN=EVIL).content == b"tenant-class-hook"
    assert client.post("/tenant-only-hook", HTTP_HOST=TENANT, HTTP_ORIGIN=EVIL).content == b"tenant-hook"
    assert CALLED == ["tenant-hook", "tenant-class-hook", "tenant-hook"]
    assert _refused(client.post("/hook", HTTP_ORIGIN=EVIL))  # ROOT_URLCONF's protected view
    assert CALLED == ["tenant-hook", "tenant-class-hook", "tenant-hook"]


@pytest.mark.usefixtures("django_settings")
async def test_under_asgi_too() -> None:
    from django.test import AsyncClient

    client = AsyncClient()
    tenant = {"X-Tenant": "1", "Origin": EVIL}
    assert _refused(await client.post("/transfer", headers=tenant))
    assert (await client.post("/hook", headers=tenant)).content == b"tenant-hook"
    assert _refused(await client.post("/hook", headers={"Origin": EVIL}))
    assert (await client.post("/transfer", headers={"Origin": EVIL})).content == b"root-hook"
    assert CALLED == ["tenant-hook", "root-hook"]


@pytest.mark.usefixtures("django_settings")
def test_no_view_in_the_real_urlconf_is_refused() -> None:
    from django.test import Client

    client = Client()
    assert _refused(client.post("/nowhere", HTTP_HOST=TENANT, HTTP_ORIGIN=EVIL))
    assert _refused(client.post("/nowhere", HTTP_ORIGIN=EVIL))
    assert client.post("/nowhere", HTTP_HOST=TENANT).status_code == 404  # no browser headers: Django's 404


class ShortCircuitMiddleware:
    """Answers by itself before any view is resolved (a redirect, a maintenance page)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("maintenance")


def test_a_later_middleware_answering_by_itself_does_not_lift_the_refusal() -> None:
    from django.test import Client, override_settings

    from .django_app import setup

    setup()
    with override_settings(
        ROOT_URLCONF=RootURLs,
        MIDDLEWARE=["backend_guard.django.GuardMiddleware", f"{__name__}.ShortCircuitMiddleware"],
        BACKEND_GUARD={"csrf": True},
        ALLOWED_HOSTS=["*"],
    ):
        client = Client()
        assert _refused(client.post("/transfer", HTTP_ORIGIN=EVIL))  # no view reached: not exempt
        assert client.post("/transfer").content == b"maintenance"


def test_the_refusal_is_the_stack_s_own_problem_document() -> None:
    """The same status, body and headers as the WSGI ``Guard``'s refusal, with every layer's headers."""
    from django.test import Client, override_settings
    from werkzeug.test import Client as WSGIClient

    from .django_app import setup

    settings = bg.GuardSettings(csrf=True, request_id={"trust_incoming": True})

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"form"]

    plain = WSGIClient(bg.wsgi.Guard(app, settings)).post(
        "/hook", headers={"Host": "testserver", "Origin": EVIL, "X-Request-ID": "rid-1"}
    )
    setup()
    with override_settings(ROOT_URLCONF=RootURLs, MIDDLEWARE=MIDDLEWARE, BACKEND_GUARD=settings, ALLOWED_HOSTS=["*"]):
        django = Client().post("/hook", HTTP_ORIGIN=EVIL, HTTP_X_REQUEST_ID="rid-1")
    assert django.status_code == 403
    assert (django.status_code, django.content) == (plain.status_code, plain.data)
    assert sorted((k.lower(), v) for k, v in django.headers.items()) == sorted(
        (k.lower(), v) for k, v in plain.headers.items()
    )


def test_with_a_rate_limit_the_refused_request_was_counted_before_the_view() -> None:
    """In Django the view is known only after every middleware's request phase, so the rate limit (in the stack)
    counts a request the view then refuses; over the limit, the 429 answers first (docs/csrf.md, Django)."""
    from django.test import Client, override_settings

    from .django_app import setup

    settings = bg.GuardSettings(csrf=True, rate_limit={"default_limits": "2/minute"})
    setup()
    with override_settings(ROOT_URLCONF=RootURLs, MIDDLEWARE=MIDDLEWARE, BACKEND_GUARD=settings, ALLOWED_HOSTS=["*"]):
        client = Client(REMOTE_ADDR="203.0.113.77")
        first = client.post("/hook", HTTP_ORIGIN=EVIL)
        assert _refused(first)
        assert ";r=1;" in first.headers["RateLimit"]  # counted: one request of two left
        assert _refused(client.post("/hook", HTTP_ORIGIN=EVIL))
        assert client.post("/hook", HTTP_ORIGIN=EVIL).status_code == 429


@pytest.mark.server
@pytest.mark.usefixtures("django_settings")
def test_through_a_real_server() -> None:
    from django.core.handlers.wsgi import WSGIHandler

    with run_wsgi(WSGIHandler()) as url, httpx.Client(base_url=url) as client:
        forged = client.post("/transfer", headers={"Host": TENANT, "Origin": EVIL})
        assert _refused(forged)
        assert forged.headers["x-request-id"]
        assert client.post("/hook", headers={"Host": TENANT, "Origin": EVIL}).text == "tenant-hook"
        assert client.post("/transfer", headers={"Origin": EVIL}).text == "root-hook"
        assert _refused(client.post("/hook", headers={"Origin": EVIL}))
        assert _refused(client.post("/nowhere", headers={"Host": TENANT, "Origin": EVIL}))
    assert CALLED == ["tenant-hook", "root-hook"]
