"""The view a request would reach, per framework (translation only): how a middleware honours ``csrf_exempt``.

A middleware runs before the framework routes the request, so it cannot see the view's marker. The shells of
cross-origin protection ask these functions only when they are about to refuse a request (never on the hot
path): Starlette/FastAPI match the app's routes (``route.matches``, the public routing API), Flask binds its URL
map. Each returns the view (None when no route matches) and never raises: an odd request is then simply not
exempt. Django is the exception: a middleware listed after ``GuardMiddleware`` may still set ``request.urlconf``,
so the refusal waits for ``process_view`` and :func:`django_view_exempt` reads the view Django resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..csrf import is_csrf_exempt

__all__ = ["django_view_exempt", "find_flask_app", "find_starlette_app", "flask_view", "starlette_endpoint"]

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
    try:
        from starlette.routing import Match, Mount
    except ImportError:  # pragma: no cover - no Starlette app without Starlette
        return None
    return _match(getattr(app, "routes", None), dict(scope), Match, Mount, 0)


def _match(routes: Any, scope: dict[str, Any], match: Any, mount: type[Any], depth: int) -> Any:
    """The endpoint of the route Starlette's router picks for ``scope`` (through mounts), or None."""
    if not isinstance(routes, list) or depth > _MAX_MOUNTS:
        return None
    route, child = _pick(routes, scope, match)
    if isinstance(route, mount):
        return _match(list(route.routes), {**scope, **child}, match, mount, depth + 1)
    return child.get("endpoint", getattr(route, "endpoint", None))


def _pick(routes: list[Any], scope: dict[str, Any], match: Any) -> tuple[Any, dict[str, Any]]:
    """``(route, child scope)`` as Starlette's router picks them: the first route matching path and method, else
    the first matching the path alone (its endpoint is never called: it answers 405); ``(None, {})`` for none.
    The first partial match taken while a later route fully matches would lend one method's exemption to
    another method's view."""
    partial: tuple[Any, dict[str, Any]] | None = None
    for route in routes:
        found = _matched(route, scope, match)
        if found is None:
            continue
        kind, child = found
        if kind == match.FULL:
            return route, child
        partial = partial or (route, child)
    return partial or (None, {})


def _matched(route: Any, scope: dict[str, Any], match: Any) -> tuple[Any, dict[str, Any]] | None:
    """``(match kind, child scope)`` of a route matching ``scope``; None when it does not (or refuses the scope)."""
    try:
        kind, child = route.matches(scope)
    except Exception:  # noqa: BLE001  # a custom route class refusing an odd scope: not this route
        return None
    return None if kind == match.NONE else (kind, dict(child))


def find_flask_app(app: Any) -> Any:
    """The Flask app down the ``.app`` chain from ``app`` (its ``wsgi_app`` is a bound method), or None.

    Example::

        find_flask_app(flask_app.wsgi_app) is flask_app   # True, once Guard wrapped it
    """
    return _down_chain(app, _is_flask)


def flask_view(app: Any, environ: dict[str, Any]) -> Any:
    """The view function a Flask ``app`` routes ``environ`` to, or None.

    The URL adapter is the one Flask itself builds for the request (``create_url_adapter``: ``SERVER_NAME``,
    subdomain and host matching, ``TRUSTED_HOSTS``), so the view is the one Flask will call.

    Example::

        flask_view(flask_app, environ)   # <function webhook ...>
    """
    try:
        # shallow: the body is never read; populate_request=False: the environ is left as it was
        request = app.request_class(environ, populate_request=False, shallow=True)
        endpoint, _ = app.create_url_adapter(request).match()
    except Exception:  # noqa: BLE001  # no route (404, 405, a redirect), an untrusted host, an odd request
        return None
    return app.view_functions.get(endpoint)


def django_view_exempt(view: Any) -> bool:
    """True when the view Django resolved (``process_view``'s ``view_func``) is marked ``csrf_exempt``: the
    function, or the class of a class-based view (``as_view()`` keeps it as ``view_class``).

    Example::

        django_view_exempt(webhook)   # True
    """
    return is_csrf_exempt(view) or is_csrf_exempt(getattr(view, "view_class", None))
