"""Adversarial review of Django's cross-origin refusal held until ``process_view``.

A cross-site unsafe request must never run a protected view's code, whatever the middlewares around
``GuardMiddleware`` do (answer by themselves, raise, answer in ``process_view``, replace ``request.META``), and only
our own ``csrf_exempt`` marker lifts the refusal (Django's decorator, which DRF's ``APIView.as_view()`` applies
to every API view, does not). Through Django's test clients (WSGI and ASGI handlers) and through waitress.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views import View
from django.views.decorators.csrf import csrf_exempt as django_csrf_exempt

import backend_guard as bg
from backend_guard import events
from backend_guard.csrf import csrf_exempt
from backend_guard.events import Event

from .servers import run_wsgi

EVIL = "https://evil.example"
#: Views that ran, by name: a refused request must reach none.
CALLED: list[str] = []


def _record(name: str) -> HttpResponse:
    CALLED.append(name)
    return HttpResponse(name)


def transfer(request: HttpRequest) -> HttpResponse:
    return _record("transfer")


@django_csrf_exempt
def django_exempt(request: HttpRequest) -> HttpResponse:
    return _record("django-exempt")


class APIView(View):
    """What DRF's ``APIView.as_view()`` does: Django's ``csrf_exempt`` around the class-based view."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)
        view.cls = cls  # type: ignore[attr-defined]
        return django_csrf_exempt(view)

    def post(self, request: HttpRequest) -> HttpResponse:
        return _record("api")


@csrf_exempt
def hook(request: HttpRequest) -> HttpResponse:
    return _record("hook")


def _logged(view: Any) -> Any:
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = view(request)
        return response

    return wrapper


def _hiding(view: Any) -> Any:
    def wrapper(request: HttpRequest) -> HttpResponse:  # no functools.wraps: the marker is not copied
        response: HttpResponse = view(request)
        return response

    return wrapper


async def async_transfer(request: HttpRequest) -> HttpResponse:
    return _record("async-transfer")


@csrf_exempt
async def async_hook(request: HttpRequest) -> HttpResponse:
    return _record("async-hook")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[bytes]:
        CALLED.append("stream")
        yield b"streamed"

    return StreamingHttpResponse(body())


LOCK = bg.Lockout(store=bg.storage.MemoryStore(), max_failures=2, secret=b"review-django-secret-0123456789abcdef")


@LOCK.protect()
def login(request: HttpRequest) -> HttpResponse:
    CALLED.append("login")
    return HttpResponse("in") if request.POST.get("password") == "right" else HttpResponse("no", status=401)


urlpatterns = [
    path("login", login),
    path("transfer", transfer),
    path("django-exempt", django_exempt),
    path("api", APIView.as_view()),
    path("hook", hook),
    path("wrapped-hook", _logged(hook)),
    path("hidden-hook", _hiding(hook)),
    path("async-transfer", async_transfer),
    path("async-hook", async_hook),
    path("stream", stream),
]


class _Middleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)


class RaisesBefore(_Middleware):
    """A later middleware raising in its request phase."""

    def __call__(self, request: HttpRequest) -> Any:
        raise RuntimeError("boom")


class StreamsByItself(_Middleware):
    """A later middleware answering by itself with a streaming 200."""

    def __call__(self, request: HttpRequest) -> Any:
        return StreamingHttpResponse(iter([b"by-itself"]))


class AnswersInProcessView(_Middleware):
    """A middleware whose ``process_view`` answers (a 200) before the view runs."""

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse:
        return HttpResponse("process-view")


class UrlconfNone(_Middleware):
    def __call__(self, request: HttpRequest) -> Any:
        request.urlconf = None  # type: ignore[attr-defined]
        return self.get_response(request)


class ReplacesMeta(_Middleware):
    """A later middleware giving the request a fresh ``META`` (a copy without private keys, a sanitised one)."""

    def __call__(self, request: HttpRequest) -> Any:
        request.META = {k: v for k, v in request.META.items() if not k.startswith("backend_guard")}
        return self.get_response(request)


GUARD = "backend_guard.django.GuardMiddleware"


def _settings(middleware: list[str], **guard: Any) -> Any:
    from django.test import override_settings

    from .django_app import setup

    setup()
    CALLED.clear()
    return override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=middleware,
        BACKEND_GUARD={"csrf": True, **guard},
        ALLOWED_HOSTS=["*"],
        DEBUG_PROPAGATE_EXCEPTIONS=False,
    )


def _refused(response: Any) -> bool:
    return (
        response.status_code == 403
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["code"] == "cross-origin-request"
    )


@pytest.fixture
def guard_only() -> Iterator[None]:
    with _settings([GUARD]):
        yield


@pytest.mark.usefixtures("guard_only")
def test_django_s_own_csrf_exempt_and_drf_views_are_not_exempt() -> None:
    """Only ``backend_guard.csrf.csrf_exempt`` lifts the refusal: Django's decorator (and so every DRF view, which
    ``APIView.as_view()`` wraps in it) stays protected, as it was when the URLconf was resolved in ``__call__``."""
    from django.test import Client

    client = Client()
    assert _refused(client.post("/django-exempt", HTTP_ORIGIN=EVIL))
    assert _refused(client.post("/api", HTTP_ORIGIN=EVIL))
    assert CALLED == []
    assert client.post("/api").content == b"api"  # no browser headers: passes


@pytest.mark.usefixtures("guard_only")
def test_decorators_keep_the_marker_only_when_they_copy_it() -> None:
    from django.test import Client

    client = Client()
    assert client.post("/wrapped-hook", HTTP_ORIGIN=EVIL).content == b"hook"  # functools.wraps copies __dict__
    assert _refused(client.post("/hidden-hook", HTTP_ORIGIN=EVIL))  # the marker hidden: fails closed
    assert CALLED == ["hook"]


@pytest.mark.usefixtures("guard_only")
async def test_async_views_under_the_asgi_handler() -> None:
    from django.test import AsyncClient

    client = AsyncClient()
    assert _refused(await client.post("/async-transfer", headers={"Origin": EVIL}))
    assert (await client.post("/async-hook", headers={"Origin": EVIL})).content == b"async-hook"
    assert _refused(await client.post("/stream", headers={"Origin": EVIL}))
    assert CALLED == ["async-hook"]


@pytest.mark.usefixtures("guard_only")
def test_events_once_and_no_refusal_left_for_the_next_request() -> None:
    from django.test import Client

    client = Client()
    found: list[Event] = []
    with events.subscribe(found.append):
        assert _refused(client.post("/transfer", HTTP_ORIGIN=EVIL))
        assert client.post("/transfer", HTTP_ORIGIN="http://testserver").content == b"transfer"
        assert client.post("/transfer").content == b"transfer"
    assert [e.name for e in found] == ["csrf.refused"]
    assert CALLED == ["transfer", "transfer"]


@pytest.mark.usefixtures("guard_only")
def test_a_cross_site_request_let_through_by_a_csrf_exempt_view_is_no_event() -> None:
    """The refusal held for ``process_view`` is lifted: nothing was refused, so no ``csrf.refused`` (operators saw
    a false alarm for every webhook call); a request refused at its view is still one event."""
    from django.test import Client

    client = Client()
    found: list[Event] = []
    with events.subscribe(found.append):
        assert client.post("/hook", HTTP_ORIGIN=EVIL).content == b"hook"
        assert client.post("/wrapped-hook", HTTP_SEC_FETCH_SITE="cross-site").content == b"hook"
        assert found == []
        assert _refused(client.post("/hidden-hook", HTTP_ORIGIN=EVIL))
    assert [(e.name, dict(e.fields)) for e in found] == [
        ("csrf.refused", {"rule": "origin-mismatch", "websocket": False})
    ]


OTHERS = [
    pytest.param([GUARD, f"{__name__}.RaisesBefore"], 500, id="later-raises"),
    pytest.param([GUARD, f"{__name__}.StreamsByItself"], 200, id="later-streams-by-itself"),
    # listed first: its process_view answers before ours is asked
    pytest.param([f"{__name__}.AnswersInProcessView", GUARD], 200, id="earlier-process-view-answers"),
    pytest.param([GUARD, f"{__name__}.AnswersInProcessView"], 200, id="later-process-view-answers"),
    pytest.param([GUARD, f"{__name__}.UrlconfNone"], 200, id="urlconf-none"),
]


@pytest.mark.parametrize(("middleware", "plain"), OTHERS)
def test_whatever_the_other_middlewares_do_the_refusal_stands(middleware: list[str], plain: int) -> None:
    from django.test import Client

    with _settings(middleware):
        client = Client(raise_request_exception=False)
        assert _refused(client.post("/transfer", HTTP_ORIGIN=EVIL))
        assert _refused(client.post("/stream", HTTP_ORIGIN=EVIL))
        assert client.post("/hook", HTTP_SEC_FETCH_SITE="same-origin").status_code == plain
        assert "transfer" not in CALLED
        assert "stream" not in CALLED


@pytest.mark.parametrize(("middleware", "plain"), OTHERS)
async def test_whatever_the_other_middlewares_do_the_refusal_stands_under_asgi(
    middleware: list[str], plain: int
) -> None:
    from django.test import AsyncClient

    with _settings(middleware):
        client = AsyncClient(raise_request_exception=False)
        assert _refused(await client.post("/transfer", headers={"Origin": EVIL}))
        assert _refused(await client.post("/async-transfer", headers={"Origin": EVIL}))
        assert (await client.post("/hook", headers={"Sec-Fetch-Site": "same-origin"})).status_code == plain
        assert "transfer" not in CALLED
        assert "async-transfer" not in CALLED


@pytest.mark.usefixtures("guard_only")
def test_a_refused_login_takes_no_lockout_attempt_and_reads_no_body() -> None:
    """The lockout decorator (which reads the login body) is part of the view: a refused request never reaches
    it, so cross-site guesses cannot lock the victim's account."""
    from django.test import Client

    client = Client()
    for _ in range(5):
        assert _refused(client.post("/login", {"username": "alice", "password": "guess"}, HTTP_ORIGIN=EVIL))
    assert CALLED == []
    assert not LOCK.check("alice", "127.0.0.1").locked
    assert client.post("/login", {"username": "alice", "password": "right"}).content == b"in"


ONE_PART = ["CORSMiddleware", "SecureHeadersMiddleware", "RateLimitMiddleware"]


@pytest.mark.parametrize(
    "middleware",
    [[GUARD, f"backend_guard.django.{one}"] for one in ONE_PART]
    + [[f"backend_guard.django.{one}", GUARD] for one in ONE_PART],
)
def test_one_part_middlewares_around_guard_never_let_the_stand_in_out(middleware: list[str]) -> None:
    """Another GuardMiddleware class before or after ours sees the held refusal too (its ``process_view`` may be
    asked first): the client gets the problem document (never the bare 403 stand-in), an exempt view passes."""
    from django.test import Client

    with _settings(middleware, rate_limit={"default_limits": "100/minute"}):
        client = Client()
        assert _refused(client.post("/transfer", HTTP_ORIGIN=EVIL))
        assert client.post("/hook", HTTP_ORIGIN=EVIL).content == b"hook"
        assert CALLED == ["hook"]


def test_a_later_middleware_replacing_request_meta_does_not_run_the_protected_view() -> None:
    """The held refusal must be found by ``process_view`` even when a later middleware gave the request a new
    ``META``: otherwise the protected view runs (its side effects happen) and only its response is replaced."""
    from django.test import Client

    with _settings([GUARD, f"{__name__}.ReplacesMeta"]):
        client = Client()
        assert _refused(client.post("/transfer", HTTP_ORIGIN=EVIL))
        assert CALLED == []  # the view's code never ran
        assert client.post("/hook", HTTP_ORIGIN=EVIL).content == b"hook"  # an exempt view still passes


@pytest.mark.server
def test_through_a_real_server() -> None:
    from django.core.handlers.wsgi import WSGIHandler

    raising = _settings([GUARD, f"{__name__}.RaisesBefore"])
    with raising, run_wsgi(WSGIHandler()) as url, httpx.Client(base_url=url) as client:
        assert _refused(client.post("/api", headers={"Origin": EVIL}))
        assert _refused(client.post("/transfer", headers={"Origin": EVIL}))
        assert client.post("/transfer").status_code == 500  # the later middleware's own failure
    with _settings([GUARD]), run_wsgi(WSGIHandler()) as url, httpx.Client(base_url=url) as client:
        assert _refused(client.post("/django-exempt", headers={"Origin": EVIL}))
        assert _refused(client.post("/api", headers={"Sec-Fetch-Site": "cross-site"}))
        assert client.post("/hook", headers={"Origin": EVIL}).text == "hook"
    assert CALLED == ["hook"]
