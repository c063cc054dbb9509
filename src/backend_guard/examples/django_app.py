"""The Django example: the same routes as the FastAPI one, as Django views behind ``GuardMiddleware``.

Run (WSGI): ``waitress-serve --port 8000 backend_guard.examples.django_app:application``;
(ASGI): ``uvicorn backend_guard.examples.django_app:asgi_application``. Settings for the stack come from
``BACKEND_GUARD_...`` variables.

Standing alone, the module configures Django itself (no project needed; ``DJANGO_ALLOWED_HOSTS`` and
``DJANGO_SECRET_KEY`` are read from the environment). Inside a project whose settings are already configured,
:func:`create_app` leaves them alone: it builds a fresh handler whose ``MIDDLEWARE`` starts with
``GuardMiddleware`` and whose ``BACKEND_GUARD`` are the given settings, and routes its requests to its own URL
patterns (Django's documented ``request.urlconf`` hook), so several example apps can live in one process.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ..clientip import ClientIP
from ..config import GuardSettings
from ..headers import SecureHeaders, csp_nonce
from .service import PAGE, AuthService, BadRequest

__all__ = [
    "GUARD_MIDDLEWARE",
    "URLConf",
    "application",
    "asgi_application",
    "configure",
    "create_app",
    "create_asgi_app",
    "make_urlpatterns",
]

#: The dotted path Django's ``MIDDLEWARE`` names the guard by; first, so its headers go on every response.
GUARD_MIDDLEWARE = "backend_guard.django.GuardMiddleware"
_MIDDLEWARE = [GUARD_MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
_lock = threading.Lock()
_View = TypeVar("_View", bound=Callable[..., Any])


def configure() -> None:
    """Configure Django for the example, unless a project (``DJANGO_SETTINGS_MODULE``) or a caller already did.

    Example::

        configure()          # then django.setup() has run and the example's views can be built
    """
    import django
    from django.conf import settings

    with _lock:
        if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
            hosts = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
            settings.configure(
                DEBUG=False,
                # A per-process key is enough here: the example keeps no sessions or signed cookies.
                SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
                ALLOWED_HOSTS=[h.strip() for h in hosts.split(",") if h.strip()],
                ROOT_URLCONF=__name__,
                MIDDLEWARE=list(_MIDDLEWARE),
                INSTALLED_APPS=[],
                DATABASES={},
                USE_TZ=True,
                TEMPLATES=[
                    {
                        "BACKEND": "django.template.backends.django.DjangoTemplates",
                        "OPTIONS": {"context_processors": ["backend_guard.django.csp_nonce_context"]},
                    }
                ],
            )
        django.setup()


def _typed(decorator: Any) -> Callable[[_View], _View]:
    """Django's view decorators keep the view's signature (Django ships no type hints: say so once)."""
    return cast(Callable[[_View], _View], decorator)


def read_json(request: Any) -> Any:
    """The request's JSON body, or BadRequest (a clean 400 problem document) when it is not JSON."""
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):  # RecursionError: pathologically nested input
        raise BadRequest("The body is not valid JSON.") from None


def make_urlpatterns(service: AuthService, client_ip: ClientIP | None = None) -> list[Any]:
    """The example's URL patterns, as a Django project's ``urls.py`` would write them.

    Example::

        urlpatterns = make_urlpatterns(AuthService.create())
    """
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import path
    from django.views.decorators import csrf, http

    csrf_exempt, require_GET, require_POST = (
        _typed(csrf.csrf_exempt),
        _typed(http.require_GET),
        _typed(http.require_POST),
    )
    web = SecureHeaders(preset="web")
    limiter = service.limiter
    auth = service.tokens.require_auth()
    resolve = client_ip or ClientIP()

    @require_GET
    def health(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"status": "ok"})

    @require_GET
    @web.route()
    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse(PAGE.format(nonce=csp_nonce(request)))

    # csrf_exempt: these JSON endpoints take bearer tokens, not cookies (CsrfViewMiddleware would refuse them).
    @csrf_exempt
    @require_POST
    @limiter.limit("20/minute")
    def register(request: HttpRequest) -> HttpResponse:
        return JsonResponse(service.register(read_json(request)), status=201)

    @csrf_exempt
    @require_POST
    @limiter.limit(AuthService.LOGIN_LIMIT)
    def login(request: HttpRequest) -> HttpResponse:
        address = resolve.from_environ(request.META)
        return JsonResponse(service.pair_json(service.login(read_json(request), address)))

    @csrf_exempt
    @require_POST
    def refresh(request: HttpRequest) -> HttpResponse:
        return JsonResponse(service.pair_json(service.refresh(read_json(request))))

    @require_GET
    @auth
    def me(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"sub": request.auth["sub"]})

    @csrf_exempt
    @require_POST
    @auth
    def logout_all(request: HttpRequest) -> HttpResponse:
        service.logout_all(request.auth)
        return HttpResponse(status=204)

    return [
        path("health", health),
        path("", page),
        path("register", register),
        path("login", login),
        path("refresh", refresh),
        path("me", me),
        path("logout-all", logout_all),
    ]


class URLConf:
    """A URLconf object (what Django reads from a ``urls.py``: ``urlpatterns``), one per example app.

    Example::

        request.urlconf = URLConf(make_urlpatterns(service))
    """

    def __init__(self, urlpatterns: list[Any]) -> None:
        self.urlpatterns = urlpatterns


def _build(handler_class: type, settings: GuardSettings | None, service: AuthService | None) -> Any:
    configure()
    from django.test.utils import override_settings

    guard_settings = settings if settings is not None else GuardSettings.from_env()
    svc = service if service is not None else AuthService.create()
    urlconf = URLConf(make_urlpatterns(svc, guard_settings.client_ip()))

    class ExampleHandler(handler_class):  # type: ignore[misc]
        """Django's handler, routing to this app's URL patterns (``request.urlconf``)."""

        def get_response(self, request: Any) -> Any:
            request.urlconf = urlconf
            return super().get_response(request)

        async def get_response_async(self, request: Any) -> Any:
            request.urlconf = urlconf
            return await super().get_response_async(request)

    # The handler reads MIDDLEWARE, and GuardMiddleware reads BACKEND_GUARD, once: when it is built.
    with _lock, override_settings(MIDDLEWARE=list(_MIDDLEWARE), BACKEND_GUARD=guard_settings):
        handler = ExampleHandler()
    handler.urlconf = urlconf
    handler.service = svc
    return handler


def create_app(settings: GuardSettings | None = None, service: AuthService | None = None) -> Any:
    """The example as a WSGI application (Django's ``WSGIHandler``); settings default to the environment.

    Example::

        application = create_app(bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
    """
    from django.core.handlers.wsgi import WSGIHandler

    return _build(WSGIHandler, settings, service)


def create_asgi_app(settings: GuardSettings | None = None, service: AuthService | None = None) -> Any:
    """The example as an ASGI application (Django's ``ASGIHandler``); settings default to the environment.

    Example::

        asgi_application = create_asgi_app()     # uvicorn module:asgi_application
    """
    from django.core.handlers.asgi import ASGIHandler

    return _build(ASGIHandler, settings, service)


configure()
_service = AuthService.create()
#: The WSGI application (``waitress-serve backend_guard.examples.django_app:application``).
application = create_app(service=_service)
app = application
#: The ASGI application, sharing the WSGI one's users (``uvicorn backend_guard.examples.django_app:asgi_application``).
asgi_application = create_asgi_app(service=_service)
#: So ``ROOT_URLCONF = "backend_guard.examples.django_app"`` serves the same routes.
urlpatterns = application.urlconf.urlpatterns
