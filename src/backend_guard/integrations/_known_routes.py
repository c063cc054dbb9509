"""An app's routes as :class:`~backend_guard.ratelimit.KnownRoutes`, per framework (translation only).

Each function reads the framework's public routing API: whether it routes a concrete path, and one concrete
path per route (parameters filled with ``1``). The rule check itself is
:func:`~backend_guard.ratelimit.check_rule_routes`.
"""

from __future__ import annotations

import re
from typing import Any

from ..ratelimit import KnownRoutes

#: A parameter in a route template: Starlette ``{id:int}``, Flask/Werkzeug and Django ``<int:id>``.
_BRACES = re.compile(r"\{[^{}]*\}")
_ANGLES = re.compile(r"<[^<>]*>")
#: The scope types a Starlette route may serve: an HTTP request or a WebSocket handshake (both rate limited).
_KINDS = ("http", "websocket")


def starlette_routes(app: Any) -> KnownRoutes | None:
    """The routes of a Starlette or FastAPI ``app`` (``scope["app"]``); None when it is not one."""
    try:
        from starlette.routing import Match, Mount, Route, WebSocketRoute
    except ImportError:  # pragma: no cover - starlette is what put the app in the scope
        return None
    routes = getattr(app, "routes", None)
    if not isinstance(routes, list):
        return None
    samples: list[str] = []
    complete = True

    def walk(prefix: str, found: list[Any]) -> None:
        nonlocal complete
        for route in found:
            if isinstance(route, (Route, WebSocketRoute)):  # a WebSocket handshake is rate limited too
                samples.append(prefix + _BRACES.sub("1", route.path_format))
            elif isinstance(route, Mount):
                base = prefix + _BRACES.sub("1", route.path_format)
                if route.routes:
                    walk(base, list(route.routes))
                else:  # another ASGI app (static files...): any path under the mount may be its
                    samples.extend((base + "/", base + "/1"))
            else:
                complete = False  # a Host or a custom route class: not read

    walk("", routes)

    def serves(path: str) -> bool:  # an app-relative path: what the ASGI shells match rules against (route_path)
        scopes = [{"type": kind, "path": path, "root_path": "", "method": "GET", "headers": []} for kind in _KINDS]
        return any(route.matches(scope)[0] != Match.NONE for route in routes for scope in scopes)

    return KnownRoutes(serves, tuple(samples), complete)


def flask_routes(app: Any, script_root: str = "") -> KnownRoutes | None:
    """The routes of a Flask ``app``'s URL map, served under ``script_root``; None for host or subdomain
    matching (a path alone does not tell the route)."""
    from werkzeug.exceptions import HTTPException, MethodNotAllowed
    from werkzeug.routing import RequestRedirect

    url_map = app.url_map
    rules = list(url_map.iter_rules())
    if url_map.host_matching or any(rule.subdomain for rule in rules):
        return None
    adapter = url_map.bind("localhost", script_name=script_root or "/")

    def serves(path: str) -> bool:
        if script_root and not path.startswith(script_root + "/"):
            return False
        try:
            adapter.match(path[len(script_root) :], method="GET")
        except MethodNotAllowed:
            return True
        except RequestRedirect:  # the route is another path (strict slashes): this one only redirects
            return False
        except HTTPException:
            return False
        return True

    return KnownRoutes(serves, tuple(script_root + _ANGLES.sub("1", rule.rule) for rule in rules))


def django_routes(urlconf: Any = None, script_name: str = "") -> KnownRoutes:
    """The routes of Django's URLconf (``urlconf``: a request's own, default ``ROOT_URLCONF``), served under
    ``script_name``."""
    from django.urls import URLPattern, URLResolver, get_resolver, resolve
    from django.urls.exceptions import Resolver404
    from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
    from django.utils.regex_helper import normalize

    samples: list[str] = []
    complete = True

    def sample(pattern: Any) -> str | None:
        if isinstance(pattern, RoutePattern):
            return _ANGLES.sub("1", str(pattern))
        if isinstance(pattern, RegexPattern):
            found = normalize(str(pattern))
            if not found:
                return None
            text, params = found[0]
            return str(text % {name: "1" for name in params})
        if isinstance(pattern, LocalePrefixPattern):
            return str(pattern.language_prefix)
        return None

    def walk(prefix: str, patterns: Any) -> None:
        nonlocal complete
        for entry in patterns:
            part = sample(entry.pattern)
            if part is None:
                complete = False
            elif isinstance(entry, URLResolver):
                walk(prefix + part, entry.url_patterns)
            elif isinstance(entry, URLPattern):
                samples.append(script_name + "/" + prefix + part)

    walk("", get_resolver(urlconf).url_patterns)

    def serves(path: str) -> bool:
        if script_name and not path.startswith(script_name + "/"):
            return False
        try:
            resolve(path[len(script_name) :], urlconf)
        except Resolver404:
            return False
        return True

    return KnownRoutes(serves, tuple(samples), complete)
