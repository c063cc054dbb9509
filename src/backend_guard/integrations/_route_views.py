"""The view a request would reach, per framework (translation only): how a middleware honours ``csrf_exempt``.

A middleware runs before the framework routes the request, so it cannot see the view's marker. The shells of
cross-origin protection ask these functions only when they are about to refuse a request (never on the hot
path): Starlette/FastAPI match the app's routes (``route.matches``, the public routing API), Flask binds its URL
map, Django resolves the path with its URLconf. Each returns the view (None when no route matches) and never
raises: an odd request is then simply not exempt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    return found if _has_routes(found) else _down_chain(app, _has_routes)


def _has_routes(node: Any) -> bool:
    return isinstance(getattr(node, "routes", None), list)


def _is_flask(node: Any) -> bool:
    return hasattr(node, "url_map") and hasattr(node, "view_functions")


def _down_chain(node: Any, wanted: Callable[[Any], bool]) -> Any:
    """The first ``wanted`` object down a chain of ``.app`` links (a bound method stands for its owner)."""
    for _ in range(_MAX_DEPTH):
        if node is None:
            return None
        for candidate in (node, getattr(node, "__self__", None)):
            if wanted(candidate):
                return candidate
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
        child = _matched(route, scope, none)
        if child is None:
            continue
        if isinstance(route, mount):
            return _match(list(route.routes), {**scope, **child}, none, mount, depth + 1)
        return child.get("endpoint", getattr(route, "endpoint", None))
    return None


def _matched(route: Any, scope: dict[str, Any], none: Any) -> dict[str, Any] | None:
    """The child scope of a route matching ``scope``; None when it does not (or refuses the scope)."""
    try:
        match, child = route.matches(scope)
    except Exception:  # noqa: BLE001  # a custom route class refusing an odd scope: not this route
        return None
    return None if match == none else dict(child)


def find_flask_app(app: Any) -> Any:
    """The Flask app down the ``.app`` chain from ``app`` (its ``wsgi_app`` is a bound method), or None.

    Example::

        find_flask_app(flask_app.wsgi_app) is flask_app   # True, once Guard wrapped it
    """
    return _down_chain(app, _is_flask)


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
