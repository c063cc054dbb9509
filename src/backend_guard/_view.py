"""The plain view of a request the sans-IO core reads (:class:`RequestView`), from an ASGI scope or a WSGI environ.

The core never sees a framework object: shells and decorators build a :class:`RequestView` (method, path,
route template, headers, client address, scheme, host) and pass plain values on. This module knows the two
server protocols only; each framework's request object is turned into a view by its adapter
(``integrations/_adapter_*.py``), which reads the scope or environ the request carries and calls the builders
here. :mod:`backend_guard.request` is the public path of these names.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import FrozenInstanceError
from typing import Any, TypeVar

from .clientip import ClientIP

__all__ = ["RequestView", "headers_from_pairs", "scope_view", "view_from_environ", "view_from_scope"]

_NO_PROXIES = ClientIP()

_T = TypeVar("_T")
_assign = object.__setattr__  # the view is immutable to its readers: it sets its own slots this way
_UNSET: Any = object()  # a lazy value not computed yet


class RequestView:
    """What the core may know of a request: plain, immutable values.

    ``headers`` are ``(lower-case name, value)`` pairs in arrival order (repeated headers kept);
    ``route`` is the route template (``/users/{id}``) when the framework knows it, else None;
    ``client`` is the resolved client address (through trusted proxies only).

    A view built from a request (:func:`view_from_scope`, :func:`view_from_environ`, :func:`view_from_request`)
    computes what is asked of it, once, on first use: :meth:`header` decodes only the header asked for, and the
    client address (with ``scheme`` and ``host``) and the route template are resolved when first read. Most
    guards read two or three of these values per request.

    Example::

        view = view_from_scope(scope)
        view.header("origin"), view.route or view.path, view.client
    """

    __slots__ = ("_client", "_headers", "_host", "_index", "_route", "_scheme", "_source", "method", "path", "query")
    __match_args__ = ("method", "path", "headers", "client", "scheme", "host", "route", "query")

    method: str
    path: str
    query: str
    # What a lazy view computes on first use (``_UNSET`` until then); ``_source`` says where it reads it.
    _headers: tuple[tuple[str, str], ...]
    _client: str
    _scheme: str
    _host: str | None
    _route: str | None
    _index: dict[str, list[str]] | None
    _source: Any

    def __init__(
        self,
        method: str,
        path: str,
        headers: tuple[tuple[str, str], ...] = (),
        client: str = "",
        scheme: str = "http",
        host: str | None = None,
        route: str | None = None,
        query: str = "",
        *,
        _source: _Source | None = None,
    ) -> None:
        _assign(self, "method", method)
        _assign(self, "path", path)
        _assign(self, "query", query)
        _assign(self, "_headers", headers)
        _assign(self, "_client", client)
        _assign(self, "_scheme", scheme)
        _assign(self, "_host", host)
        _assign(self, "_route", route)
        _assign(self, "_index", None)
        _assign(self, "_source", _source)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _keep(self, name: str, value: _T) -> _T:
        """Remember a value computed on first use (the view stays immutable to its readers)."""
        _assign(self, name, value)
        return value

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every header as ``(lower-case name, value)`` pairs, in arrival order."""
        if self._headers is _UNSET:
            return self._keep("_headers", self._source.headers())
        return self._headers

    def _resolve(self) -> None:
        """Resolve the client address, scheme and host (through trusted proxies), once."""
        client, scheme, host = self._source.resolve()
        self._keep("_client", client)
        self._keep("_scheme", scheme)
        self._keep("_host", host)

    @property
    def client(self) -> str:
        """The client address, resolved through trusted proxies only."""
        if self._client is _UNSET:
            self._resolve()
        return self._client

    @property
    def scheme(self) -> str:
        """The scheme the client used (``http``, ``https``, ``ws``, ``wss``), resolved like :attr:`client`."""
        if self._client is _UNSET:
            self._resolve()
        return self._scheme

    @property
    def host(self) -> str | None:
        """The host the client asked for, resolved like :attr:`client` (the Host header otherwise)."""
        if self._client is _UNSET:
            self._resolve()
        if self._host is _UNSET:  # no forwarded host believed: the request's own Host header
            return self._keep("_host", next(iter(self.header_all("host")), None))
        return self._host

    @property
    def route(self) -> str | None:
        """The route template (``/users/{id}``) when the framework knows it, else None."""
        if self._route is _UNSET:
            route: str | None = self._source.route()
            return self._keep("_route", route)
        return self._route

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined with ``", "``."""
        values = self.header_all(name)
        return ", ".join(values) if values else None

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        if self._headers is _UNSET:
            found: list[str] | None = self._source.header_all(name)
            if found is not None:  # the source read that one header without decoding the others
                return found
        index = self._index
        if index is None:
            index = {}
            for k, v in self.headers:
                index.setdefault(k, []).append(v)
            self._keep("_index", index)
        return index.get(name.lower(), [])

    def header_map(self, names: tuple[str, ...]) -> dict[str, list[str]]:
        """Every value of each header in ``names`` (lower-case ASCII names), read in one pass: ``{name: values}``,
        a header the request lacks left out.

        Example::

            view.header_map(("content-length", "content-type"))   # {'content-type': ['application/json']}
        """
        if self._headers is _UNSET:
            found: dict[str, list[str]] | None = self._source.header_map(names)
            if found is not None:
                return found
        return {name: values for name in names if (values := self.header_all(name))}

    @property
    def secure(self) -> bool:
        """True for ``https`` and ``wss`` (as resolved through trusted proxies)."""
        return self.scheme in ("https", "wss")

    @property
    def route_or_path(self) -> str:
        """The route template when known, else the concrete path."""
        return self.route or self.path

    def _fields(self) -> tuple[Any, ...]:
        return (self.method, self.path, self.headers, self.client, self.scheme, self.host, self.route, self.query)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={value!r}" for name, value in zip(self.__match_args__, self._fields(), strict=True))
        return f"RequestView({values})"


class _Filling(RequestView):
    """A :class:`RequestView` being built by :func:`_lazy_view`: its slots set as plain attributes, then it is made
    a RequestView (ten ``object.__setattr__`` calls through the frozen guard cost as much as the rest of a view)."""

    __slots__ = ()
    # Both: CPython keeps one slot for the two, and runs it in C only when neither is a Python function.
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__


def _lazy_view(method: str, path: str, route: Any, query: str, source: _Source) -> RequestView:
    """A view whose headers, client, scheme and host (and the route, when ``_UNSET``) ``source`` gives on first
    use: the fields :meth:`RequestView.__init__` sets, set on a :class:`_Filling`."""
    view = object.__new__(_Filling)
    view.method = method
    view.path = path
    view.query = query
    view._headers = view._client = view._scheme = view._host = _UNSET
    view._route = route
    view._index = None
    view._source = source
    view.__class__ = RequestView  # type: ignore[assignment]  # the same slots: frozen from here on
    return view


class _Source:
    """Where a lazy :class:`RequestView` reads what it is first asked for: an ASGI scope or a WSGI environ."""

    __slots__ = ("client_ip", "request", "route_known")

    def __init__(self, request: Mapping[str, Any], client_ip: ClientIP | None, route: Any = _UNSET) -> None:
        self.request = request
        self.client_ip = client_ip or _NO_PROXIES
        self.route_known = route

    def headers(self) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

    def header_all(self, name: str) -> list[str] | None:
        """The values of one header read without decoding the others, or None: the view decodes them all."""
        return None

    def header_map(self, names: tuple[str, ...]) -> dict[str, list[str]] | None:
        """:meth:`RequestView.header_map` read without decoding the other headers, or None: the view decodes them."""
        return None

    def resolve(self) -> tuple[str, str, str | None]:
        """The client address, the scheme and the host (``_UNSET``: the Host header, read when asked)."""
        raise NotImplementedError

    def route(self) -> str | None:
        return None if self.route_known is _UNSET else self.route_known


class _ScopeSource(_Source):
    """An ASGI scope (``http`` or ``websocket``)."""

    __slots__ = ()

    def headers(self) -> tuple[tuple[str, str], ...]:
        return _scope_headers(self.request)

    def header_all(self, name: str) -> list[str] | None:
        return _scope_header_all(self.request, name)

    def header_map(self, names: tuple[str, ...]) -> dict[str, list[str]] | None:
        # The names compared as _scope_header_all compares them; one not in ASCII lower case is looked up alone.
        wanted, odd = _raw_names(names)
        out: dict[str, list[str]] = {}
        for k, v in self.request.get("headers", ()):
            name = wanted.get(k.lower())
            if name is not None:
                out.setdefault(name, []).append(v.decode("latin-1"))
        for name in odd:
            found = _scope_header_all(self.request, name)
            if found:
                out[name] = found
        return out

    def resolve(self) -> tuple[str, str, str | None]:
        resolved = self.client_ip.resolve_scope(self.request)
        return resolved.address, resolved.scheme, _UNSET if resolved.host is None else resolved.host

    def route(self) -> str | None:
        return _scope_route(self.request) if self.route_known is _UNSET else self.route_known


class _EnvironSource(_Source):
    """A WSGI environ (or Django's ``META``)."""

    __slots__ = ()

    def headers(self) -> tuple[tuple[str, str], ...]:
        return _environ_headers(self.request)

    def header_all(self, name: str) -> list[str] | None:
        return _environ_header_all(self.request, name)

    def header_map(self, names: tuple[str, ...]) -> dict[str, list[str]] | None:
        # Each name read under its CGI name, as header_all reads it; None when one needs every header decoded.
        located = _cgi_keys_of(names)
        if located is None:
            return None
        environ = self.request
        out: dict[str, list[str]] = {}
        for name, keys in located:
            found = _environ_values(environ, keys)
            if found is None:
                return None
            if found:
                out[name] = found
        return out

    def resolve(self) -> tuple[str, str, str | None]:
        resolved = self.client_ip.resolve_environ(self.request)
        return resolved.address, resolved.scheme, resolved.host


def _scope_header_all(scope: Mapping[str, Any], name: str) -> list[str]:
    """The values of header ``name`` in a scope, decoding only those (names compared as the view's are: decoded
    as latin-1 and lower-cased; ``bytes.lower`` gives the same for the ASCII names HTTP allows)."""
    wanted = name.lower()
    try:
        raw = wanted.encode("latin-1")
    except UnicodeEncodeError:
        raw = None
    out = []
    for k, v in scope.get("headers", ()):
        if k.lower() == raw or (not k.isascii() and k.decode("latin-1").lower() == wanted):
            out.append(v.decode("latin-1"))
    return out


@functools.lru_cache(maxsize=64)
def _raw_names(names: tuple[str, ...]) -> tuple[dict[bytes, str], tuple[str, ...]]:
    """``names`` (from code, never from clients) by the bytes a scope's header name lower-cases to, and the names
    that are not ASCII lower case (``bytes.lower`` never gives them)."""
    plain = [name for name in names if name.isascii() and name == name.lower()]
    return {name.encode("ascii"): name for name in plain}, tuple(name for name in names if name not in plain)


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


def _scope_route(scope: Mapping[str, Any]) -> str | None:
    """The template of the route the router matched, after the app's root path: the matched route's (FastAPI's,
    or Starlette 1.8+'s ``scope["route"]``), else the one route of the scope's endpoint (None: not known)."""
    route = scope.get("route")
    if route is None:
        template = _endpoint_template(scope)
    else:
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if not isinstance(template, str):
            return None
    root = scope.get("root_path")
    return template if template is None or not root else str(root) + template


def view_from_scope(scope: Mapping[str, Any], client_ip: ClientIP | None = None) -> RequestView:
    """A view of an ASGI ``http`` or ``websocket`` scope (headers, client and route read on first use).

    Example::

        view = view_from_scope(scope, ClientIP(["10.0.0.0/8"]))
    """
    source = _ScopeSource(scope, client_ip)  # scope_view's, with the scope's own path and route
    return _lazy_view(scope.get("method", "GET"), scope.get("path", "/"), _UNSET, _scope_query(scope), source)


def scope_view(scope: Mapping[str, Any], client_ip: ClientIP | None, path: str, route: Any) -> RequestView:
    """A lazy view of ``scope`` with this path and route (``_UNSET``: the route the router matched)."""
    source = _ScopeSource(scope, client_ip, route)
    return _lazy_view(scope.get("method", "GET"), path, _UNSET, _scope_query(scope), source)


def _scope_headers(scope: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ()))


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


_BODY_KEYS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


@functools.lru_cache(maxsize=256)
def _cgi_keys(name: str) -> tuple[str, str | None] | None:
    """Where a WSGI environ holds header ``name``: its CGI name (``HTTP_X_NAME``) and, for a body header, the key
    servers put it under (``CONTENT_TYPE``); None for a name with ``_`` or not in ASCII (several CGI names could be
    it). Bounded: a name can come from a client (e.g. a CORS preflight's list)."""
    wanted = name.lower()
    if "_" in wanted or not wanted.isascii():
        return None
    return "HTTP_" + wanted.upper().replace("-", "_"), _BODY_KEYS.get(wanted)


@functools.lru_cache(maxsize=64)
def _cgi_keys_of(names: tuple[str, ...]) -> tuple[tuple[str, tuple[str, str | None]], ...] | None:
    """Each of ``names`` (from code, never from clients) with its :func:`_cgi_keys`; None if one has none."""
    located = []
    for name in names:
        keys = _cgi_keys(name)
        if keys is None:
            return None
        located.append((name, keys))
    return tuple(located)


def _environ_values(environ: Mapping[str, Any], keys: tuple[str, str | None]) -> list[str] | None:
    """The values of the header the :func:`_cgi_keys` ``keys`` locate, or None for a body header also sent under
    its CGI name (``HTTP_CONTENT_TYPE``: the view decodes every header to answer)."""
    key, body_key = keys
    if body_key is None:
        value = environ.get(key)
        return [] if value is None else [str(value)]
    if key in environ:
        return None
    value = environ.get(body_key)
    return [str(value)] if value else []


def _environ_header_all(environ: Mapping[str, Any], name: str) -> list[str] | None:
    """The value of header ``name`` read under its CGI name, without decoding the others; None where the view
    decodes them all to answer (see :func:`_cgi_keys` and :func:`_environ_values`)."""
    keys = _cgi_keys(name)
    return None if keys is None else _environ_values(environ, keys)


def view_from_environ(
    environ: Mapping[str, Any], client_ip: ClientIP | None = None, *, route: str | None = None
) -> RequestView:
    """A view of a WSGI ``environ`` (``route`` when the caller knows the template); headers and client read on
    first use.

    Example::

        view = view_from_environ(environ)
    """
    source = _EnvironSource(environ, client_ip)
    method, query = environ.get("REQUEST_METHOD", "GET"), environ.get("QUERY_STRING", "")
    return _lazy_view(method, _environ_path(environ), route, query, source)


def _environ_path(environ: Mapping[str, Any]) -> str:
    """The full path of a WSGI request: the application's mount point and the path below it."""
    return _wsgi_text((environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/"))


def _wsgi_text(value: str) -> str:
    """WSGI hands paths over as latin-1 decoded bytes; recover UTF-8 where it is valid."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def headers_from_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Normalise header pairs for a :class:`RequestView` (lower-case names)."""
    return tuple((k.lower(), v) for k, v in pairs)
