"""A Django project set up as docs/quickstart/django.md says, with Django's admin, for the browser tests.

Its own process (Django settings are configured once per process): ``startproject``'s apps and middleware with
``backend_guard.django.GuardMiddleware`` first and no ``BACKEND_GUARD`` setting (every default), the
``csp_nonce_context`` context processor, a SQLite file, MD5 password hashing (fast, tests only).

``python -m tests.django_admin_app`` creates the tables and the superuser ``admin`` (password ``BG_DJ_ADMIN_PASSWORD``),
serves the project with waitress on a free loopback port (static files as ``runserver`` serves them, outside
the middleware) and prints that port on its first line of output.

Environment: ``BG_DJ_DB`` (the SQLite file), ``BG_DJ_ADMIN_PASSWORD``. Routes: ``/admin/`` (Django's admin),
``/nonce/`` (a template with a nonced inline script and style), ``/health``.
"""

from __future__ import annotations

import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only-not-a-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
    ],
    MIDDLEWARE=[
        "backend_guard.django.GuardMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [],
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                    "backend_guard.django.csp_nonce_context",
                ],
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "nonce.html": (
                                '<!doctype html><html><head><style nonce="{{ csp_nonce }}">#out{color:rgb(1,2,3)}'
                                '</style></head><body><p id="out">blocked</p><script nonce="{{ csp_nonce }}">'
                                'document.getElementById("out").textContent = "ran";</script></body></html>'
                            )
                        },
                    ),
                    "django.template.loaders.app_directories.Loader",
                ],
            },
        }
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BG_DJ_DB"]}},
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    STATIC_URL="static/",
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.contrib import admin  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402


def nonce_page(request: HttpRequest) -> HttpResponse:
    return render(request, "nonce.html")


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("admin/", admin.site.urls), path("nonce/", nonce_page), path("health", health)]

if __name__ == "__main__":
    from django.contrib.auth.models import User
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from waitress.server import create_server

    call_command("migrate", verbosity=0)
    User.objects.create_superuser("admin", "admin@example.invalid", os.environ["BG_DJ_ADMIN_PASSWORD"])
    server = create_server(StaticFilesHandler(get_wsgi_application()), host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()
