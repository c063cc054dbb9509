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


def _known_templates(router: Any) -> dict[Any, str | None]:
    """The templates found so far for ``router``'s endpoints (a fresh dict for a router that cannot be weakly
    referenced: not remembered)."""
    try:
        return _TEMPLATES.setdefault(router, {})
    except TypeError:
        return {}


def _template_of(router: Any, endpoint: Any) -> str | None:
    """The template of the one route of ``router`` whose endpoint is ``endpoint``; None when none or several."""
    found = _templates_of(router, endpoint)
    return found.pop() if len(found) == 1 else None


def _templates_of(router: Any, endpoint: Any) -> set[str | None]:
    return {getattr(r, "path_format", None) for r in _routes_of(router) if getattr(r, "endpoint", None) is endpoint}


def _endpoint_template(scope: Mapping[str, Any]) -> str | None:
    """The template of the one route whose endpoint is ``scope["endpoint"]``, else None (also when ambiguous)."""
    router, endpoint = scope.get("router"), scope.get("endpoint")
    if router is None or endpoint is None:
        return None
    known = _known_templates(router)
    if endpoint not in known:
        known[endpoint] = _template_of(router, endpoint)
    return known[endpoint]


def _route_template(route: Any) -> str | None:
    """The template of a matched route (FastAPI's, or Starlette 1.8+'s ``scope["route"]``)."""
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else None


def _scope_route(scope: Mapping[str, Any]) -> str | None:
    route = scope.get("route")
    template = _endpoint_template(scope) if route is None else _route_template(route)
    return None if template is None else str(scope.get("root_path", "") or "") + template


def view_from_scope(scope: Mapping[str, Any], client_ip: ClientIP | None = None) -> RequestView:
    """A view of an ASGI ``http`` or ``websocket`` scope.

    Example::

        view = view_from_scope(scope, ClientIP(["10.0.0.0/8"]))
    """
    resolved = (client_ip or _NO_PROXIES).resolve_scope(scope)
    headers = _scope_headers(scope)
    host = resolved.host
    if host is None:
        host = _host_header(headers)
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


def _scope_headers(scope: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ()))


def _host_header(headers: tuple[tuple[str, str], ...]) -> str | None:
    return next((v for k, v in headers if k == "host"), None)


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
    return RequestView(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=_environ_path(environ),
        headers=_environ_headers(environ),
        client=resolved.address,
        scheme=resolved.scheme,
        host=resolved.host,
        route=route,
        query=environ.get("QUERY_STRING", ""),
    )


def _environ_path(environ: Mapping[str, Any]) -> str:
    """The full path of a WSGI request: the application's mount point and the path below it."""
    return _wsgi_text((environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/"))


def _wsgi_text(value: str) -> str:
    """WSGI hands paths over as latin-1 decoded bytes; recover UTF-8 where it is valid."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


#: The request class of each framework: (its module, the class name, the framework's name), tried in turn.
_REQUEST_CLASSES = (
    ("starlette.requests", "Request", "starlette"),
    ("django.http", "HttpRequest", "django"),
    ("werkzeug.wrappers", "Request", "flask"),
)


def framework_of(obj: Any) -> str | None:
    """``"starlette"``, ``"flask"`` or ``"django"`` for a request object of that framework, else None."""
    for module_name, class_name, framework in _REQUEST_CLASSES:
        module = sys.modules.get(module_name)  # a framework never imported made no request
        if module is not None and isinstance(obj, getattr(module, class_name)):
            return framework
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
        return _flask_view(request, client_ip)
    if kind == "django":
        return _django_view(request, client_ip)
    raise TypeError(f"Not a request object backend_guard knows: {type(request).__name__}")


def _flask_view(request: Any, client_ip: ClientIP | None) -> RequestView:
    rule = getattr(request, "url_rule", None)
    return view_from_environ(request.environ, client_ip, route=getattr(rule, "rule", None))


def _django_route(request: Any) -> str | None:
    """The route pattern Django resolved (``users/<int:id>/``) as a path (``/users/<int:id>/``), if any."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return None if route is None else "/" + route.lstrip("/")


def _django_view(request: Any, client_ip: ClientIP | None) -> RequestView:
    route = _django_route(request)
    scope = getattr(request, "scope", None)  # Django's ASGIRequest keeps its scope
    if scope is None:
        return view_from_environ(getattr(request, "META", {}), client_ip, route=route)
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


def headers_from_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Normalise header pairs for a :class:`RequestView` (lower-case names)."""
    return tuple((k.lower(), v) for k, v in pairs)
