"""Django's own LoginView behind ``@lock.protect``, for tests/test_login_bodies.py, served by uvicorn workers.

Its own process (Django settings are configured once per process): the auth and contenttypes apps on a SQLite
file, signed-cookie sessions, MD5 password hashing (fast, tests only), and an authentication backend that counts
its password checks in the shared store. ``python -m tests.django_login_app`` creates the tables and the users
(alice and bob, password "right") once, before the workers start.

Environment: ``BG_DJ_DB`` (the SQLite file), ``BG_WORKER_STORE``, ``BG_WORKER_PREFIX``.
Routes: ``GET/POST /login/`` (LoginView), ``POST /email-login/`` (the ``username`` field holds an email),
``POST /fallback-login/`` (a view that, when the named account's password fails, logs in the account of a
second credential pair: the lockout counted the first), ``GET /count`` (password checks), ``GET /health``.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only-not-a-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BG_DJ_DB"]}},
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    AUTHENTICATION_BACKENDS=[f"{__name__}.CountingBackend"],
    LOGIN_REDIRECT_URL="/health",
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {"registration/login.html": "<form method=post>{% csrf_token %}{{ form }}</form>"},
                    )
                ]
            },
        }
    ],
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.contrib.auth import authenticate, get_user_model, login  # noqa: E402
from django.contrib.auth.backends import ModelBackend  # noqa: E402
from django.contrib.auth.views import LoginView  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

import backend_guard as bg  # noqa: E402
from backend_guard.storage import RedisStore, Script  # noqa: E402

STORE = RedisStore(os.environ.get("BG_WORKER_STORE", "redis://127.0.0.1:6379/0"), prefix=os.environ["BG_WORKER_PREFIX"])
# A high per-address threshold: what locks here is the account-wide one, which never applies to an address the
# user logged in from. Counting a failed LoginView post as a success would make the attacker's address "known".
LOCK = bg.Lockout(store=STORE, max_failures=100, account_max_failures=5, secret=b"django-login-app-secret-0123456789")

_INCR = Script(name="dj_checks_incr", lua="return redis.call('INCR', KEYS[1])", memory=lambda db, k, a: 0)
_GET = Script(name="dj_checks_get", lua="return tonumber(redis.call('GET', KEYS[1]) or '0')", memory=lambda db, k, a: 0)


class CountingBackend(ModelBackend):
    """Django's ModelBackend, counting every password check in the shared store."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kw: Any) -> Any:
        STORE.run(_INCR, [f"{STORE.prefix}:checks"], [])
        return super().authenticate(request, username=username, password=password, **kw)


def count(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"count": int(STORE.run(_GET, [f"{STORE.prefix}:checks"], []))})


def email_login(request: HttpRequest) -> JsonResponse:
    """Log in by email: the account field holds the user's email address, in any case."""
    user = get_user_model().objects.filter(email__iexact=request.POST.get("username", "").strip()).first()
    if user is not None:
        user = authenticate(request, username=user.get_username(), password=request.POST.get("password"))
    if user is None:
        return JsonResponse({"ok": False}, status=401)
    login(request, user)
    return JsonResponse({"ok": True})


def fallback_login(request: HttpRequest) -> JsonResponse:
    """A careless view: the body names one account, and a second credential pair may log in another one."""
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None and request.POST.get("fallback_user"):
        user = authenticate(
            request, username=request.POST.get("fallback_user"), password=request.POST.get("fallback_password")
        )
    if user is None:
        return JsonResponse({"ok": False}, status=401)
    login(request, user)
    return JsonResponse({"ok": True, "user": user.get_username()})


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("login/", LOCK.protect()(LoginView.as_view())),
    path("email-login/", LOCK.protect()(email_login)),
    path("fallback-login/", LOCK.protect()(fallback_login)),
    path("count", count),
    path("health", health),
]

if __name__ == "__main__":
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for name in ("alice", "bob", "mallory"):
        User.objects.create_user(name, email=f"{name}@example.com", password="right")
else:
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()
