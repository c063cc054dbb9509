"""The view a request would reach, per framework (translation only): how a middleware honours ``csrf_exempt``.

A middleware runs before the framework routes the request, so it cannot see the view's marker. The shells of
cross-origin protection ask these functions only when they are about to refuse a request (never on the hot
path): Starlette/FastAPI match the app's routes (``route.matches``, the public routing API), Flask binds its URL
map, Django resolves the path with its URLconf. Each returns the view (None when no route matches) and never
raises: an odd request is then simply not exempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..csrf import is_csrf_exempt

__all__ = ["django_view", "find_flask_app", "find_starlette_app", "flask_view", "starlette_endpoint"]

#: How far down a chain of middlewares (``.app`` links) the framework's app is looked for.
_MAX_DEPTH = 32
#: How deep mounts are followed.
_MAX_MOUNTS = 8


def find_starlette_app(scope: Mapping[str, Any], app: Any) -> Any:
    """The Starlette/FastAPI app of a request: ``scope["app"]`` (set when the middleware runs inside the app),
    else the first object with a ``routes`` list down the ``.app`` chain from ``app``; None when there is none.

    Example::

        find_starlette_app({"app": api}, None) is api   # True
    """
    found = scope.get("app")
    if isinstance(getattr(found, "routes", None), list):
        return found
    node = app
    for _ in range(_MAX_DEPTH):
        if node is None:
            return None
        if isinstance(getattr(node, "routes", None), list):
            return node
        node = getattr(node, "app", None)
    return None


def starlette_endpoint(app: Any, scope: Mapping[str, Any]) -> Any:
    """The endpoint a Starlette/FastAPI ``app`` routes ``scope`` to (through mounts), or None.

    Example::

        starlette_endpoint(api, {"type": "http", "path": "/hook", "method": "POST", "root_path": "", "headers": []})
    """
    if app is None:
        return None
    try:
        from starlette.routing import Match, Mount
    except ImportError:  # pragma: no cover - no Starlette app without Starlette
        return None
    return _match(getattr(app, "routes", None), dict(scope), Match.NONE, Mount, 0)


def _match(routes: Any, scope: dict[str, Any], none: Any, mount: type[Any], depth: int) -> Any:
    """The endpoint of the first route matching ``scope`` (a method mismatch still names the route's)."""
    if not isinstance(routes, list) or depth > _MAX_MOUNTS:
        return None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # noqa: S112  # a custom route class refusing an odd scope: not this route
            continue
        if match == none:
            continue
        if isinstance(route, mount):
            return _match(list(route.routes), {**scope, **child}, none, mount, depth + 1)
        return child.get("endpoint", getattr(route, "endpoint", None))
    return None


def find_flask_app(app: Any) -> Any:
    """The Flask app down the ``.app`` chain from ``app`` (its ``wsgi_app`` is a bound method), or None.

    Example::

        find_flask_app(flask_app.wsgi_app) is flask_app   # True, once Guard wrapped it
    """
    node = app
    for _ in range(_MAX_DEPTH):
        if node is None:
            return None
        owner = getattr(node, "__self__", None)
        for candidate in (node, owner):
            if hasattr(candidate, "url_map") and hasattr(candidate, "view_functions"):
                return candidate
        node = getattr(node, "app", None)
    return None


def flask_view(app: Any, environ: dict[str, Any]) -> Any:
    """The view function a Flask ``app`` routes ``environ`` to, or None.

    Example::

        flask_view(flask_app, environ)   # <function webhook ...>
    """
    if app is None:
        return None
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RoutingException

    try:
        endpoint, _ = app.url_map.bind_to_environ(environ).match()
    except (HTTPException, RoutingException, ValueError, UnicodeError):
        return None
    return app.view_functions.get(endpoint)


def django_view(request: Any) -> Any:
    """The view a Django ``request`` resolves to with its URLconf, or None (its class for a class-based view
    when the function carries no marker).

    Example::

        django_view(request)   # <function webhook ...>
    """
    from django.urls import Resolver404, resolve

    try:
        func = resolve(request.path_info, getattr(request, "urlconf", None)).func
    except (Resolver404, ValueError, UnicodeError):
        return None
    return func if is_csrf_exempt(func) else getattr(func, "view_class", func)
