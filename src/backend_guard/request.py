"""A small immutable view of a request, built from any framework's request, for the sans-IO core.

The core never sees a framework object: shells and decorators build a :class:`RequestView` (method, path,
route template, headers, client address, scheme, host) and pass plain values on. Builders exist for an ASGI
scope, a WSGI environ, and Starlette/FastAPI, Flask (werkzeug) and Django request objects.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clientip import ClientIP

__all__ = ["RequestView", "view_from_environ", "view_from_request", "view_from_scope"]

_NO_PROXIES = ClientIP()


@dataclass(frozen=True, slots=True)
class RequestView:
    """What the core may know of a request: plain, immutable values.

    ``headers`` are ``(lower-case name, value)`` pairs in arrival order (repeated headers kept);
    ``route`` is the route template (``/users/{id}``) when the framework knows it, else None;
    ``client`` is the resolved client address (through trusted proxies only).

    Example::

        view = view_from_scope(scope)
        view.header("origin"), view.route or view.path, view.client
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    client: str = ""
    scheme: str = "http"
    host: str | None = None
    route: str | None = None
    query: str = ""
    _index: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined with ``", "``."""
        values = self.header_all(name)
        return ", ".join(values) if values else None

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        if not self._index and self.headers:
            for k, v in self.headers:
                self._index.setdefault(k, []).append(v)
        return self._index.get(name.lower(), [])

    @property
    def secure(self) -> bool:
        """True for ``https`` and ``wss`` (as resolved through trusted proxies)."""
        return self.scheme in ("https", "wss")

    @property
    def route_or_path(self) -> str:
        """The route template when known, else the concrete path."""
        return self.route or self.path


# Starlette releases before 1.8 record the matched route only under FastAPI (``scope["route"]``); a plain Starlette
# route is found from the endpoint the router put in the scope. Keyed weakly by router, then endpoint: both are
# the application's own objects, never request data.
_TEMPLATES: weakref.WeakKeyDictionary[Any, dict[Any, str | None]] = weakref.WeakKeyDictionary()


def _routes_of(router: Any) -> Iterator[Any]:
    for route in getattr(router, "routes", None) or ():
        yield route
        yield from _routes_of(route)  # a Mount or Host: its own routes


def _endpoint_template(scope: Mapping[str, Any]) -> str | None:
    """The template of the one route whose endpoint is ``scope["endpoint"]``, else None (also when ambiguous)."""
    router, endpoint = scope.get("router"), scope.get("endpoint")
    if router is None or endpoint is None:
        return None
    try:
        known = _TEMPLATES.setdefault(router, {})
    except TypeError:  # a router that cannot be weakly referenced: not remembered
        known = {}
    if endpoint not in known:
        found = {
            getattr(r, "path_format", None) for r in _routes_of(router) if getattr(r, "endpoint", None) is endpoint
        }
        known[endpoint] = found.pop() if len(found) == 1 else None
    return known[endpoint]


def _scope_route(scope: Mapping[str, Any]) -> str | None:
    route = scope.get("route")
    if route is None:
        template = _endpoint_template(scope)
        return None if template is None else str(scope.get("root_path", "") or "") + template
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    return str(scope.get("root_path", "") or "") + template


def view_from_scope(scope: Mapping[str, Any], client_ip: ClientIP | None = None) -> RequestView:
    """A view of an ASGI ``http`` or ``websocket`` scope.

    Example::

        view = view_from_scope(scope, ClientIP(["10.0.0.0/8"]))
    """
    resolved = (client_ip or _NO_PROXIES).resolve_scope(scope)
    headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ()))
    host = resolved.host
    if host is None:
        host = next((v for k, v in headers if k == "host"), None)
    return RequestView(
        method=scope.get("method", "GET"),
        path=scope.get("path", "/"),
        headers=headers,
        client=resolved.address,
        scheme=resolved.scheme,
        host=host,
        route=_scope_route(scope),
        query=_scope_query(scope),
    )


def _scope_query(scope: Mapping[str, Any]) -> str:
    """The query string of a scope: bytes per the ASGI spec; Django's own AsyncClient puts a str there."""
    query = scope.get("query_string", b"")
    if isinstance(query, str):
        return query
    return bytes(query).decode("latin-1")


def _environ_headers(environ: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            out.append((key.replace("_", "-").lower(), str(value)))
    return tuple(out)


def view_from_environ(
    environ: Mapping[str, Any], client_ip: ClientIP | None = None, *, route: str | None = None
) -> RequestView:
    """A view of a WSGI ``environ`` (``route`` when the caller knows the template).

    Example::

        view = view_from_environ(environ)
    """
    resolved = (client_ip or _NO_PROXIES).resolve_environ(environ)
    path = (environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/")
    return RequestView(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=_wsgi_text(path),
        headers=_environ_headers(environ),
        client=resolved.address,
        scheme=resolved.scheme,
        host=resolved.host,
        route=route,
        query=environ.get("QUERY_STRING", ""),
    )


def _wsgi_text(value: str) -> str:
    """WSGI hands paths over as latin-1 decoded bytes; recover UTF-8 where it is valid."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def framework_of(obj: Any) -> str | None:
    """``"starlette"``, ``"flask"`` or ``"django"`` for a request object of that framework, else None."""
    mods = sys.modules
    if "starlette.requests" in mods and isinstance(obj, mods["starlette.requests"].Request):
        return "starlette"
    if "django.http" in mods and isinstance(obj, mods["django.http"].HttpRequest):
        return "django"
    if "werkzeug.wrappers" in mods and isinstance(obj, mods["werkzeug.wrappers"].Request):
        return "flask"
    return None


def view_from_request(request: Any, client_ip: ClientIP | None = None) -> RequestView:
    """A view of a Starlette/FastAPI, Flask (werkzeug) or Django request object.

    Example::

        @app.get("/")
        async def home(request: Request):
            view = view_from_request(request)
    """
    kind = framework_of(request)
    if kind == "starlette":
        return view_from_scope(request.scope, client_ip)
    if kind == "flask":
        rule = getattr(request, "url_rule", None)
        return view_from_environ(request.environ, client_ip, route=getattr(rule, "rule", None))
    if kind == "django":
        environ = getattr(request, "META", {})
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) if match is not None else None
        if route is not None:
            route = "/" + route.lstrip("/")
        scope = getattr(request, "scope", None)  # Django's ASGIRequest keeps its scope
        if scope is not None:
            view = view_from_scope(scope, client_ip)
            return RequestView(
                method=view.method,
                path=request.path,
                headers=view.headers,
                client=view.client,
                scheme=view.scheme,
                host=view.host,
                route=route,
                query=view.query,
            )
        return view_from_environ(environ, client_ip, route=route)
    raise TypeError(f"Not a request object backend_guard knows: {type(request).__name__}")


def headers_from_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Normalise header pairs for a :class:`RequestView` (lower-case names)."""
    return tuple((k.lower(), v) for k, v in pairs)
