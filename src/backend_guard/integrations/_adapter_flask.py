"""The Flask adapter: what route decorators need to know of Flask's (werkzeug's) requests and responses.

One object, :data:`ADAPTER`, implements :class:`~backend_guard._adapter.FrameworkAdapter`; the table in
``_adapter.py`` lists it. Flask is never imported here: it is found in ``sys.modules`` (a framework never
imported made no request), and a Flask route's request is the one of its request context.
"""

from __future__ import annotations

import contextlib
import operator
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._http import text_headers
from .._view import RequestView, view_from_environ
from ..clientip import ClientIP

if TYPE_CHECKING:
    from ..tokens._cookie_jar import CookieSpec

__all__ = ["ADAPTER", "FlaskAdapter"]

#: The name of a ``(name, value)`` header field.
_NAME = operator.itemgetter(0)


class FlaskAdapter:
    """Flask requests (``werkzeug.wrappers.Request``) and responses.

    Example::

        ADAPTER.current_request()   # the request of the active request context, else None
    """

    name: str = "flask"
    #: The root modules of this framework's response classes (a response's MRO is matched against them).
    response_modules: tuple[str, ...] = ("werkzeug", "flask")
    #: A Flask route gets no request argument: its request is the one of the active request context.
    contextual: bool = True
    #: Its responses keep header fields as text: :meth:`set_raw_headers` decodes the pairs.
    raw_headers: bool = False

    def owns(self, obj: Any) -> bool:
        """True for a werkzeug (so Flask) request."""
        module = sys.modules.get("werkzeug.wrappers")
        return module is not None and isinstance(obj, module.Request)

    def current_request(self) -> Any:
        """The request behind ``flask.request`` inside a request context, else None.

        The request object itself, not the proxy: each attribute read through werkzeug's ``LocalProxy`` looks the
        context up again (about 1 µs), and the hooks read several (``environ``, ``url_rule``).
        ``_get_current_object()`` is the proxy's documented public way to reach that object (Flask's "Notes On
        Proxies"; the underscore only keeps it from shadowing the proxied object's own attributes).
        """
        flask = sys.modules.get("flask")
        if flask is None:
            return None
        try:  # one context look-up (``has_request_context()`` first would be a second)
            return flask.request._get_current_object()  # noqa: SLF001  (documented public API, see above)
        except RuntimeError:  # "Working outside of request context": the proxy is unbound
            return None

    def view(self, request: Any, client_ip: ClientIP | None) -> RequestView:
        """The lazy view of the request's WSGI environ, with the URL rule Flask matched."""
        return view_from_environ(request.environ, client_ip, route=self.route_of(request))

    def route_of(self, request: Any) -> str | None:
        """The URL rule Flask matched (``/users/<int:id>``), else None."""
        return getattr(getattr(request, "url_rule", None), "rule", None)

    def scope_of(self, request: Any) -> Any:
        """None: a Flask request has no ASGI scope (not looked for through its proxy, where a missing attribute
        is slow)."""
        return None

    def environ_of(self, request: Any) -> Any:
        """The request's WSGI environ."""
        return getattr(request, "environ", None)

    def set_attr(self, request: Any, name: str, value: Any) -> None:
        """Offer ``value`` to the route as ``flask.g.<name>`` (set on the object behind the proxy: one context look-up,
        none of the proxy's attribute machinery)."""
        setattr(sys.modules["flask"].g._get_current_object(), name, value)  # noqa: SLF001  (documented, see above)

    def bare_response(self, body: bytes, status: int) -> Any:
        """A Flask ``Response`` with ``body`` and ``status``."""
        return sys.modules["flask"].Response(body, status=status)

    def no_store_json(self, body: bytes, status: int) -> Any:
        """A JSON response with ``body`` and ``Cache-Control: no-store`` (no ``Content-Type`` when empty)."""
        from flask import Response

        response = Response(body, status=status, mimetype="application/json", headers={"Cache-Control": "no-store"})
        if not body:
            del response.headers["Content-Type"]
        return response

    def status_and_target(self, result: Any, injected_response: Any) -> tuple[int, Any, Any]:
        """(status, response object to put headers on, the result to return): the app's ``make_response`` once.

        Called on the app itself (``current_app._get_current_object()``, as for the request above): through the
        ``current_app`` proxy (what ``flask.make_response`` does) each call looks the context up again.
        """
        app = sys.modules["flask"].current_app._get_current_object()  # noqa: SLF001  (documented, see above)
        resp = app.make_response(result)
        return int(resp.status_code), resp, resp

    def set_headers(self, target: Any, headers: list[tuple[str, str]]) -> None:
        """Through the response's ``headers``, each replacing a header of the same name.

        ``headers.set`` scans every field for the name at each call; the names already on the response are
        read once instead, and a name not among them is appended with ``headers.add`` (what ``set`` does then).
        """
        fields = target.headers
        present = set(map(str.lower, map(_NAME, fields)))  # the names on it, lower-cased (no Python code per field)
        for k, v in headers:
            lower = k.lower()
            if lower in present:
                fields.set(k, v)
            else:
                fields.add(k, v)
                present.add(lower)

    def set_raw_headers(self, target: Any, pairs: list[tuple[bytes, bytes]]) -> None:
        """:meth:`set_headers` with the pairs decoded (latin-1)."""
        self.set_headers(target, text_headers(pairs))

    def set_cookies(self, response: Any, specs: Sequence[CookieSpec]) -> None:
        """One ``Set-Cookie`` field per spec, with werkzeug's ``headers.add``."""
        for spec in specs:
            response.headers.add("Set-Cookie", spec.header())

    def read_body(self, request: Any, limit: int) -> bytes | None:
        """``request.get_data(cache=True)``: cached before any form is parsed (werkzeug parses these bytes)."""
        _cap(request, limit)
        body: bytes = request.get_data(cache=True)
        return body

    async def aread_body(self, request: Any, limit: int) -> bytes | None:
        """:meth:`read_body` (werkzeug reads the body synchronously)."""
        return self.read_body(request, limit)

    def form_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """``request.form.getlist(field)``."""
        _cap(request, limit)
        return list(request.form.getlist(field))

    async def aform_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """:meth:`form_values` (werkzeug parses the form synchronously)."""
        return self.form_values(request, field, limit)

    def parsed_json(self, request: Any) -> tuple[Any] | None:
        """``(request.get_json(),)``: the body parsed by the application's JSON provider.

        For a body Flask itself reads as JSON (``request.is_json``) the parse is cached on the request: the route's
        own ``get_json()`` returns this very object (not parsed again). Any other body (no Content-Type) is parsed
        as ``get_json(force=True)`` parses it for a route, and not cached: a route's plain ``get_json()`` still
        refuses it (415). A body that is not JSON raises werkzeug's ``BadRequest``.
        """
        return (request.get_json(force=True, cache=request.is_json),)

    def body_charset(self, request: Any) -> str | None:
        """None: Flask routes parse JSON from the bytes."""
        return None

    def body_too_large(self, exc: BaseException) -> bool:
        """False: werkzeug's ``RequestEntityTooLarge`` carries the 413 code."""
        return False

    def watch_login(self, request: Any, attempt: Any) -> None:
        """Nothing: Flask has no login machinery of its own."""

    def headers_on_error(self, request: Any, exc: BaseException, headers: list[tuple[str, str]]) -> None:
        """On the response Flask makes of ``exc`` (an ``abort(404)``, an error handler's answer), through
        ``after_this_request``, as Flask-Limiter's ``after_request`` does; nothing outside a request context, nor
        on a successful response (the exception was caught inside the request: the fields are not the answer's).
        """
        flask = sys.modules.get("flask")
        if flask is not None and flask.has_request_context():

            def add(response: Any) -> Any:
                if response.status_code >= 400:
                    self.set_headers(response, headers)
                return response

            flask.after_this_request(add)

    def offer_nonce(self, request: Any, nonce: str) -> None:
        """``flask.g.csp_nonce``, when a Flask request is active."""
        flask = sys.modules.get("flask")
        if flask is not None and flask.has_request_context():
            flask.g.csp_nonce = nonce


def _cap(request: Any, limit: int) -> None:
    """Bound a body without Content-Length (chunked) too: werkzeug stops reading past the limit (Flask 3.1+).

    A declared length within the limit needs no cap where werkzeug reads no more than the Content-Length: not
    chunked, and a server that does not terminate the stream itself (``wsgi.input_terminated``).
    """
    if _bounded_by_length(request.environ, limit):
        return
    current = request.max_content_length
    # Flask 3.0 has no setter: the limit is the app's MAX_CONTENT_LENGTH there, and the length is checked after.
    with contextlib.suppress(AttributeError):
        request.max_content_length = limit if current is None else min(current, limit)


#: The one Flask adapter (listed in ``_adapter.ADAPTERS``).
ADAPTER = FlaskAdapter()


def _bounded_by_length(environ: Any, limit: int) -> bool:
    """True when werkzeug reads at most a declared Content-Length, and that is within ``limit``."""
    if "wsgi.input_terminated" in environ or environ.get("HTTP_TRANSFER_ENCODING"):
        return False
    length = environ.get("CONTENT_LENGTH")
    return isinstance(length, str) and length.isascii() and length.isdigit() and int(length) <= limit
