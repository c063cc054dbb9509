"""``Guard``: the whole WSGI stack in the documented order, from one settings object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._check import check_instance, optional
from .._http import StartResponse, WSGIApp
from .._layer import BOTH, INNER, Answer, Merger
from .._stack import StackParts
from ..config import GuardSettings
from . import _shells as shells
from ._errors import ErrorEnvelopeMiddleware
from ._layer_shell import LayerMiddleware, finishing

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["Guard"]

#: Per request: the (layer, context) pairs entered, innermost first.
_Entries = list[tuple[LayerMiddleware, Any]]


class Guard:
    """Wrap a WSGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    The stack is the nested middlewares on ``.app``; a request runs fused: Guard drives the same middlewares
    as layers (:mod:`backend_guard._layer`), with one ``start_response`` wrapper for all of them.

    Example::

        from backend_guard.wsgi import Guard

        app.wsgi_app = Guard(app.wsgi_app, bg.GuardSettings(rate_limit={"default_limits": "100/minute"}))
    """

    def __init__(
        self,
        app: WSGIApp,
        settings: GuardSettings | None = None,
        *,
        store: Store | None = None,
        parts: StackParts | None = None,
    ) -> None:
        optional(check_instance, "parts", parts, StackParts)
        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        self.app: WSGIApp = parts.wrap(app, shells)
        self.settings = parts.settings
        # The chain parts.wrap built, read as layers: those outside the envelope, the envelope, those inside.
        self._outer, node = _layers(self.app)
        self._envelope = node if isinstance(node, ErrorEnvelopeMiddleware) else None
        self._inner: list[LayerMiddleware] = []
        if self._envelope is not None:
            self._inner, node = _layers(node.app)
        self._app: WSGIApp = node
        self._merger = Merger([*self._outer, *self._inner])

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        entries: _Entries = []
        try:
            body = self._serve(environ, start_response, entries)
        except BaseException:
            for layer, context in entries:
                if layer.ends:
                    layer.on_end(context, None)
            raise
        for layer, context in entries:  # innermost first, as the nested shells return
            if layer.ends:
                body = layer.on_end(context, body)
        return body

    def _serve(self, environ: dict[str, Any], start_response: StartResponse, entries: _Entries) -> Iterable[bytes]:
        """Every layer's request step, then the app (or the answer of a layer) under the envelope."""
        answer = _enter(self._outer, environ, entries)
        outside = len(entries)
        envelope = self._envelope
        if answer is None and envelope is not None:
            try:  # what the layers inside the envelope raise is the envelope's to answer
                app = _enter(self._inner, environ, entries) or self._app
            except Exception as exc:
                app = _raiser(exc)
            return envelope.run(app, environ, start_response, self._finish, (entries, outside))
        if answer is None:  # no envelope
            answer = _enter(self._inner, environ, entries)
        return (answer or self._app)(environ, finishing(start_response, self._finish, (entries, outside), BOTH))

    def _finish(self, context: tuple[_Entries, int], status: int, headers: Any, stage: int) -> list[Any]:
        """A response start's headers with the layers of ``stage`` (inside the envelope, outside, both)
        applied, innermost first, as the nested shells would."""
        entries, outside = context
        if stage != BOTH:
            inside = len(entries) - outside
            entries = entries[:inside] if stage == INNER else entries[inside:]
        return self._merger.merge(entries, status, headers)


def _enter(layers: list[LayerMiddleware], environ: dict[str, Any], entries: _Entries) -> WSGIApp | None:
    """Run each layer's request step; put the (layer, context) pairs first in ``entries`` (innermost first);
    the app of the first layer answering instead of the rest, if any."""
    for layer in layers:
        context = layer.on_request(environ)
        if context is None:
            continue
        if context.__class__ is Answer:
            answer: WSGIApp = context.app
            return answer
        entries.insert(0, (layer, context))
    return None


def _layers(node: Any) -> tuple[list[LayerMiddleware], Any]:
    """The layers at the top of a chain of middlewares (each one's ``.app`` the next), and what follows."""
    found: list[LayerMiddleware] = []
    while isinstance(node, LayerMiddleware):
        found.append(node)
        node = node.app
    return found, node


def _raiser(exc: Exception) -> WSGIApp:
    def fail(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raise exc

    return fail
