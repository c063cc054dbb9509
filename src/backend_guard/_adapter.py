"""What backend_guard knows of a web framework, behind one small protocol; and the table of the frameworks.

Route decorators (:mod:`._routes`), request views (:mod:`.request`) and the token cookies
(:mod:`.tokens._cookie_jar`) never name a framework: they ask the table which :class:`FrameworkAdapter` owns a
request (or a response) and call it. Each framework's knowledge is one module, ``integrations/_adapter_<name>.py``,
defining one adapter object; a new framework is one such file and one entry in :data:`ADAPTERS`.

No framework is imported here or by the adapters at module level: an adapter recognises a request through
``sys.modules`` (a framework never imported made no request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._view import RequestView
from .clientip import ClientIP
from .integrations import _adapter_django, _adapter_flask, _adapter_starlette

if TYPE_CHECKING:
    from .tokens._cookie_jar import CookieSpec

__all__ = [
    "ADAPTERS",
    "FrameworkAdapter",
    "adapter_named",
    "adapter_of",
    "context_request",
    "response_adapter",
]


class FrameworkAdapter(Protocol):
    """One web framework, as route decorators, request views and cookies see it.

    ``name`` is what :func:`backend_guard.request.framework_of` and ``RouteCall.framework`` say
    (``"starlette"`` for FastAPI too); ``response_modules`` the root modules of its response classes;
    ``contextual`` whether it keeps the current request in a context (Flask) rather than passing it;
    ``raw_headers`` whether its responses keep header fields as ASGI pairs (then :meth:`set_raw_headers` is the
    cheap way to add fields).

    Example::

        adapter = adapter_of(request)            # None for an object of no known framework
        view = adapter.view(request, client_ip)
        adapter.set_headers(response, [("X-A", "1")])
        body = await adapter.aread_body(request, 1 << 20)   # the login decorator's body, read the framework's way
    """

    name: str
    response_modules: tuple[str, ...]
    contextual: bool
    raw_headers: bool

    def owns(self, obj: Any) -> bool:
        """True when ``obj`` is a request object of this framework."""

    def current_request(self) -> Any:
        """The request of the active request context (``contextual`` frameworks), else None."""

    def view(self, request: Any, client_ip: ClientIP | None) -> RequestView:
        """The lazy :class:`~backend_guard.request.RequestView` of one of its requests."""

    def route_of(self, request: Any) -> str | None:
        """The route template the framework matched for one of its requests (``view(...).route``), else None."""

    def scope_of(self, request: Any) -> Any:
        """The request's ASGI scope, if it has one."""

    def environ_of(self, request: Any) -> Any:
        """The request's WSGI environ (Django's ``META``), if it has one."""

    def set_attr(self, request: Any, name: str, value: Any) -> None:
        """Offer a value to the route, where the framework's routes look for such things."""

    def bare_response(self, body: bytes, status: int) -> Any:
        """A response of the framework's own type with ``body`` and ``status``, no headers of ours yet."""

    def no_store_json(self, body: bytes, status: int) -> Any:
        """A JSON response of the framework's own type with ``body`` and ``Cache-Control: no-store``; an empty
        ``body`` (a 204) has no ``Content-Type``."""

    def status_and_target(self, result: Any, injected_response: Any) -> tuple[int, Any, Any]:
        """What a route returned: (status, response object to put headers on or None, the result to return)."""

    def set_headers(self, target: Any, headers: list[tuple[str, str]]) -> None:
        """Put ``headers`` on the response ``target``, each replacing a header of the same name."""

    def set_raw_headers(self, target: Any, pairs: list[tuple[bytes, bytes]]) -> None:
        """Put ASGI header pairs (lower-case names, latin-1 bytes) on ``target``, each replacing a header of the
        same name (frameworks whose responses keep them as such: ``raw_headers`` True; the others decode them)."""

    def set_cookies(self, response: Any, specs: Sequence[CookieSpec]) -> None:
        """Add one ``Set-Cookie`` field per spec to ``response``."""

    def read_body(self, request: Any, limit: int) -> bytes | None:
        """The request body through the framework's cache (the route reads the very same bytes), the framework
        told to stop reading past ``limit`` where it can; None when it already parsed a form from the stream and
        the raw bytes are gone. Sync: a route of an async framework borrows its event loop."""

    async def aread_body(self, request: Any, limit: int) -> bytes | None:
        """:meth:`read_body` for an async route."""

    def form_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """Every value of ``field`` in the request's form, parsed (and cached) by the framework."""

    async def aform_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """:meth:`form_values` for an async route."""

    def parsed_json(self, request: Any) -> tuple[Any] | None:
        """``(value,)``: the JSON body as the framework parses it for its routes (cached where the framework caches
        it: they get this very object); None where the framework has no such parse."""

    def body_charset(self, request: Any) -> str | None:
        """The charset a route may decode a JSON body with before parsing it; None where routes parse bytes."""

    def body_too_large(self, exc: BaseException) -> bool:
        """True when ``exc`` is the framework's refusal of a body over its own size limit (beyond a 413 code)."""

    def watch_login(self, request: Any, attempt: Any) -> None:
        """Let the framework's own login report settle ``attempt`` (an ``Attempt`` reserved for ``request``)."""

    def offer_nonce(self, request: Any, nonce: str) -> None:
        """Offer the request's CSP nonce where the framework's templates look for it (nothing where none do)."""

    def headers_on_error(self, request: Any, exc: BaseException, headers: list[tuple[str, str]]) -> None:
        """Put ``headers`` on the response the framework makes of ``exc``, raised by a decorated route, where the
        framework lets a route reach that response (Flask: ``after_this_request``); nothing elsewhere."""


#: The frameworks, in the order a request is matched: each check is one ``sys.modules`` look-up and an
#: ``isinstance``, so the order only sets which one answers first (Starlette: most decorated routes).
ADAPTERS: tuple[FrameworkAdapter, ...] = (_adapter_starlette.ADAPTER, _adapter_django.ADAPTER, _adapter_flask.ADAPTER)
_BY_NAME: dict[str, FrameworkAdapter] = {adapter.name: adapter for adapter in ADAPTERS}
_CONTEXTUAL = tuple(adapter for adapter in ADAPTERS if adapter.contextual)


def adapter_of(obj: Any) -> FrameworkAdapter | None:
    """The adapter of the framework ``obj`` is a request of, else None.

    Example::

        adapter_of(flask.request).name   # "flask"
    """
    for adapter in ADAPTERS:
        if adapter.owns(obj):
            return adapter
    return None


def adapter_named(name: str) -> FrameworkAdapter:
    """The adapter called ``name`` (``"starlette"``, ``"flask"``, ``"django"``); KeyError for another name.

    Example::

        adapter_named("django").bare_response(b"", 204)
    """
    return _BY_NAME[name]


def context_request() -> tuple[Any, FrameworkAdapter | None]:
    """The request of an active request context (Flask's) and its adapter; ``(None, None)`` outside one.

    Example::

        request, adapter = context_request()
    """
    for adapter in _CONTEXTUAL:
        request = adapter.current_request()
        if request is not None:
            return request, adapter
    return None, None


def response_adapter(response: Any) -> FrameworkAdapter:
    """The adapter of the framework ``response`` is a response of, by the modules of its classes (TypeError
    for another object).

    Example::

        response_adapter(JSONResponse({})).name   # "starlette"
    """
    for cls in type(response).__mro__:
        root = cls.__module__.partition(".")[0]
        for adapter in ADAPTERS:
            if root in adapter.response_modules:
                return adapter
    raise TypeError(f"Not a response object backend_guard knows: {type(response).__name__}")
