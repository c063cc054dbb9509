"""The Starlette adapter (FastAPI rides on it): what route decorators need to know of Starlette's requests and
responses, and the FastAPI parameter plumbing.

One object, :data:`ADAPTER`, implements :class:`~backend_guard._adapter.FrameworkAdapter`; the table in
``_adapter.py`` lists it. Starlette is never imported here at module level: a request is recognised through
``sys.modules`` (a framework never imported made no request), and the response classes are imported when a
response is first built.
"""

from __future__ import annotations

import functools
import operator
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._http import text_headers
from .._media import media_type
from .._view import RequestView, _scope_route, view_from_scope
from ..clientip import ClientIP

if TYPE_CHECKING:
    from ..exceptions import GuardError
    from ..tokens._cookie_jar import CookieSpec

__all__ = ["ADAPTER", "StarletteAdapter", "fastapi_classes", "refusal_exception", "starlette_classes"]

_name = operator.itemgetter(0)  # a header pair's name


#: The media types Starlette parses a form from (reading the stream); for any other, ``request.form()`` is an
#: empty form made without reading anything.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def _parsed_form_has_fields(request: Any) -> bool:
    """True unless the form FastAPI parsed from ``request``'s consumed stream (``request.form()`` returns that
    one) is empty. True whenever that cannot be told: a type Starlette parses no form from (the stream went to
    another reader, an empty form says nothing of it), or no form parsed (asking raises: the stream is gone)."""
    if media_type(request.headers.get("content-type")) not in _FORM_TYPES:
        return True
    try:
        return len(await request.form()) > 0
    except Exception:  # no form was parsed: the stream was read some other way
        return True


class StarletteAdapter:
    """Starlette and FastAPI requests (``starlette.requests.Request``) and responses.

    Example::

        ADAPTER.owns(request), ADAPTER.view(request, None).route
    """

    name: str = "starlette"
    #: The root modules of this framework's response classes (a response's MRO is matched against them).
    response_modules: tuple[str, ...] = ("starlette",)
    #: No request context to look in: Starlette passes the request, or FastAPI fills an injected parameter.
    contextual: bool = False
    #: Its responses keep header fields as ASGI pairs (``raw_headers``): :meth:`set_raw_headers` extends them.
    raw_headers: bool = True

    def owns(self, obj: Any) -> bool:
        """True for a Starlette (or FastAPI) request or WebSocket (both are an ``HTTPConnection``)."""
        module = sys.modules.get("starlette.requests")
        return module is not None and isinstance(obj, module.HTTPConnection)

    def current_request(self) -> Any:
        """None: Starlette keeps no request context."""
        return None

    def view(self, request: Any, client_ip: ClientIP | None) -> RequestView:
        """The lazy view of the request's ASGI scope."""
        return view_from_scope(request.scope, client_ip)

    def route_of(self, request: Any) -> str | None:
        """The template of the route the router matched (with the app's root path), else None."""
        return _scope_route(request.scope)

    def scope_of(self, request: Any) -> Any:
        """The request's ASGI scope."""
        return getattr(request, "scope", None)

    def environ_of(self, request: Any) -> Any:
        """None: a Starlette request has no WSGI environ."""
        return None

    def set_attr(self, request: Any, name: str, value: Any) -> None:
        """Offer ``value`` to the route as ``request.state.<name>``."""
        setattr(request.state, name, value)

    def bare_response(self, body: bytes, status: int) -> Any:
        """A Starlette ``Response`` with ``body`` and ``status``."""
        from starlette.responses import Response

        return Response(content=body, status_code=status)

    def no_store_json(self, body: bytes, status: int) -> Any:
        """A JSON response with ``body`` (none when empty, nor a ``Content-Type``) and ``Cache-Control: no-store``."""
        from starlette.responses import Response

        headers = {"Cache-Control": "no-store"}
        return Response(
            body or None, status_code=status, media_type="application/json" if body else None, headers=headers
        )

    def status_and_target(self, result: Any, injected_response: Any) -> tuple[int, Any, Any]:
        """(status, response object to put headers on, the result to return).

        A route returning a model or a dict under FastAPI: the headers go on the injected ``Response``.
        """
        status = getattr(result, "status_code", None)
        if isinstance(status, int):
            return status, result, result
        if injected_response is not None:
            code = getattr(injected_response, "status_code", None)
            return (int(code) if code else 200), injected_response, result
        return 200, None, result

    def set_headers(self, target: Any, headers: list[tuple[str, str]]) -> None:
        """A new name is appended to the response's ``raw_headers`` (what it sends) as encoded bytes; a name
        already there is set through ``headers``, which replaces it (as ``response.headers[k] = v`` does)."""
        raw = getattr(target, "raw_headers", None)
        if not isinstance(raw, list):
            for k, v in headers:
                target.headers[k] = v
            return
        present = dict(raw)
        for k, v in headers:
            name = _raw_name(k)
            if name in present:
                target.headers[k] = v
            else:
                raw.append((name, v.encode("latin-1")))
                present[name] = b""

    def set_raw_headers(self, target: Any, pairs: list[tuple[bytes, bytes]]) -> None:
        """Extend the response's ``raw_headers`` with ``pairs``; a name already there is replaced instead (through
        :meth:`set_headers`)."""
        raw = getattr(target, "raw_headers", None)
        if isinstance(raw, list) and dict(raw).keys().isdisjoint(map(_name, pairs)):
            raw += pairs
        else:
            self.set_headers(target, text_headers(pairs))

    def set_cookies(self, response: Any, specs: Sequence[CookieSpec]) -> None:
        """One ``Set-Cookie`` field per spec, appended to ``raw_headers`` (what Starlette's ``set_cookie`` does)."""
        for spec in specs:
            response.raw_headers.append((b"set-cookie", spec.header().encode("latin-1")))

    async def aread_body(self, request: Any, limit: int) -> bytes | None:
        """``await request.body()`` (cached: the route, and FastAPI before it, read these same bytes); None when
        the stream was consumed (FastAPI parsed a ``Form()`` body: no one can read it raw now), or ``b""`` when
        the form parsed from it is empty (no reader finds anything in it: a bodyless GET that declared a form
        type); ``b""`` for a WebSocket (its handshake carries no body)."""
        if request.scope.get("type") == "websocket":
            return b""
        try:
            body: bytes = await request.body()
        except RuntimeError:  # "Stream consumed"
            return None if await _parsed_form_has_fields(request) else b""
        return body

    def read_body(self, request: Any, limit: int) -> bytes | None:
        """:meth:`aread_body` from a sync route's worker thread, on the borrowed event loop."""
        import anyio.from_thread

        body: bytes | None = anyio.from_thread.run(self.aread_body, request, limit)
        return body

    async def aform_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """``(await request.form()).getlist(field)`` (the form is cached on the request)."""
        return list((await request.form()).getlist(field))

    def form_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """:meth:`aform_values` from a sync route's worker thread, on the borrowed event loop."""
        import anyio.from_thread

        values: list[Any] = anyio.from_thread.run(self.aform_values, request, field, limit)
        return values

    def parsed_json(self, request: Any) -> tuple[Any] | None:
        """None: a Starlette route reads the bytes (its ``request.json()`` is ``json.loads`` of them, parsed here
        the same way)."""
        return None

    def body_charset(self, request: Any) -> str | None:
        """None: Starlette and FastAPI routes parse JSON from the bytes."""
        return None

    def body_too_large(self, exc: BaseException) -> bool:
        """False: Starlette's size refusals carry a 413 status code."""
        return False

    def watch_login(self, request: Any, attempt: Any) -> None:
        """Nothing: Starlette has no login machinery of its own."""

    def offer_nonce(self, request: Any, nonce: str) -> None:
        """Nothing: a Starlette template gets the nonce from ``csp_nonce(request)``."""

    def headers_on_error(self, request: Any, exc: BaseException, headers: list[tuple[str, str]]) -> None:
        """On a Starlette (FastAPI) ``HTTPException``: added to its ``headers`` (a new dict, each replacing a field
        of the same name), which the exception handlers send; nothing on other exceptions."""
        exceptions = sys.modules.get("starlette.exceptions")  # a route raised its HTTPException: loaded
        if exceptions is not None and isinstance(exc, exceptions.HTTPException):
            exc.headers = {**(exc.headers or {}), **dict(headers)}


@functools.lru_cache(maxsize=256)
def _raw_name(name: str) -> bytes:
    """A header name as ASGI sends it: lower case, encoded once per name (names come from code, not clients)."""
    return name.lower().encode("latin-1")


#: The one Starlette adapter (listed in ``_adapter.ADAPTERS``).
ADAPTER = StarletteAdapter()


def fastapi_classes() -> tuple[Any, Any] | None:
    """Starlette's ``HTTPConnection`` and ``Response`` classes, for FastAPI to fill a route's injected parameters; None
    when Starlette cannot be imported (then no route is FastAPI's, and nothing is injected).

    Example::

        classes = fastapi_classes()   # (HTTPConnection, Response) under FastAPI
    """
    if "starlette" not in sys.modules and "fastapi" not in sys.modules:
        try:
            import starlette  # noqa: F401
        except ImportError:
            return None
    return starlette_classes()


def starlette_classes() -> tuple[Any, Any]:
    """Starlette's ``HTTPConnection`` and ``Response`` classes (ImportError without Starlette): what FastAPI fills
    on a route's injected parameters, on HTTP and WebSocket routes alike (a ``Request`` parameter it fills on
    HTTP routes only; a route's own ``Request`` or ``WebSocket`` parameter is an ``HTTPConnection`` too).

    Example::

        Connection, Response = starlette_classes()
    """
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

    return HTTPConnection, Response


def refusal_exception(exc: GuardError, extra: list[tuple[str, str]]) -> Exception:
    """The Starlette ``HTTPException`` a FastAPI dependency raises for a refusal: the GuardError's status and
    headers (``extra`` added), the GuardError itself as ``.guard_error`` (rendered as problem+json by
    backend_guard's exception handlers).

    Example::

        raise refusal_exception(bg.RateLimited(retry_after=3), []) from None
    """
    from starlette.exceptions import HTTPException

    headers = dict(exc.headers)
    headers.update(dict(extra))
    http_exc = HTTPException(exc.status, detail=exc.detail, headers=headers)
    http_exc.guard_error = exc  # type: ignore[attr-defined]
    return http_exc
