"""The WSGI translation of :class:`~backend_guard._layer.Layer`: one shell drives any layer.

Each WSGI middleware of the stack (but the ErrorEnvelope, which wraps the call) is a :class:`LayerMiddleware`:
it implements the layer's two steps and inherits ``__call__``, which turns them into WSGI (the request step
on the environ, the response step in ``start_response``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._http import StartResponse, WSGIApp
from .._layer import Answer, Finish, LayerDefaults, status_code

__all__ = ["LayerMiddleware", "finishing"]


class LayerMiddleware(LayerDefaults):
    """A WSGI middleware made of a layer: subclasses implement ``on_request``/``on_response_start``.

    Example::

        class Hello(LayerMiddleware):
            def __init__(self, app):
                self.app = app

            def on_request(self, environ):
                return "hello"

            def on_response_start(self, context, status, headers):
                return [*headers, ("X-Hello", context)]
    """

    app: WSGIApp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        context = self.on_request(environ)
        if context is None:
            return self.app(environ, start_response)
        if context.__class__ is Answer:
            answer: Iterable[bytes] = context.app(environ, start_response)
            return answer
        start = self._starting(start_response, context)
        if not self.ends:
            return self.app(environ, start)
        try:
            body = self.app(environ, start)
        except BaseException:
            self.on_end(context, None)
            raise
        ended: Iterable[bytes] = self.on_end(context, body)
        return ended

    def _starting(self, start_response: StartResponse, context: Any) -> StartResponse:
        """``start_response`` with this layer's headers merged in."""
        merge = self.on_response_start

        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            merged = merge(context, status_code(status), headers)
            if exc_info is None:
                return start_response(status, merged)
            return start_response(status, merged, exc_info)

        return start_with_headers


def finishing(start_response: StartResponse, finish: Finish, context: Any, stage: int) -> StartResponse:
    """``start_response`` with ``finish(context, status, headers, stage)`` applied to the headers (a Guard's)."""

    def finishing_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        merged = finish(context, status_code(status), headers, stage)
        if exc_info is None:
            return start_response(status, merged)
        return start_response(status, merged, exc_info)

    return finishing_start
