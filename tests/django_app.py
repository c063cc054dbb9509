"""A minimal Django project for tests: settings configured once per process, URLs other tests can extend.

Example::

    from tests.django_app import setup, add_urls, wsgi_app, asgi_app

    setup()
    add_urls(path("mine/", my_view))
    app = wsgi_app(["backend_guard...Middleware"])   # middleware list is read when the handler is built
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
urlpatterns: list[Any] = []


def setup(**overrides: Any) -> None:
    """Configure Django settings once (later calls are no-ops; ``overrides`` only count on the first)."""
    with _lock:
        from django.conf import settings

        if settings.configured:
            return
        options: dict[str, Any] = {
            "DEBUG": False,
            "SECRET_KEY": "tests-only-not-a-secret",
            "ALLOWED_HOSTS": ["*"],
            "ROOT_URLCONF": __name__,
            "MIDDLEWARE": [],
            "INSTALLED_APPS": [],
            "DATABASES": {},
            "USE_TZ": True,
            "LOGGING_CONFIG": None,
            "DATA_UPLOAD_MAX_MEMORY_SIZE": 1024 * 1024,
        }
        options.update(overrides)
        settings.configure(**options)
        import django

        django.setup()


def add_urls(*patterns: Any) -> None:
    """Add URL patterns (skipping routes already present) and clear Django's resolver cache."""
    from django.urls import clear_url_caches

    with _lock:
        existing = {str(p.pattern) for p in urlpatterns}
        urlpatterns.extend(p for p in patterns if str(p.pattern) not in existing)
        clear_url_caches()


def wsgi_app(middleware: list[str]) -> Any:
    """A Django WSGI handler with this ``MIDDLEWARE`` list (loaded now, so later changes do not affect it)."""
    setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    with _lock:
        settings.ROOT_URLCONF = __name__  # another test may have configured Django first
        settings.MIDDLEWARE = list(middleware)
        return WSGIHandler()


def asgi_app(middleware: list[str]) -> Any:
    """A Django ASGI handler with this ``MIDDLEWARE`` list."""
    setup()
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler

    with _lock:
        settings.ROOT_URLCONF = __name__
        settings.MIDDLEWARE = list(middleware)
        return ASGIHandler()
