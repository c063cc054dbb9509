"""``Guard``: the whole ASGI stack in the documented order, from one settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._check import check_instance, optional
from .._http import ASGIApp, Receive, Scope, Send
from .._layer import BOTH, INNER, Answer, Merger
from .._stack import StackParts
from ..config import GuardSettings
from . import _shells as shells
from ._errors import ErrorEnvelopeMiddleware
from ._layer_shell import LayerMiddleware, finishing

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["Guard"]

#: Per request: the (layer, context) pairs entered, innermost first, and how many of them are outside the
#: envelope (the last ones).
_Entries = list[tuple[LayerMiddleware, Any]]


class Guard:
    """Wrap an ASGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Each part can be switched off or configured in ``settings``; the compiled parts are on ``.parts``
    (``parts.limiter``, ``parts.store``, ``parts.lockout()``, ``parts.tokens()``...).

    Example::

        from backend_guard.asgi import Guard

        app = Guard(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
        # or, in Starlette/FastAPI:  app.add_middleware(Guard, settings=settings)

    The stack is the nested middlewares on ``.app`` (which serves websockets and lifespan). An HTTP request
    runs fused: Guard drives the same middlewares as layers (:mod:`backend_guard._layer`), each one's request
    step in turn, and hands the app to the ErrorEnvelope with one function that adds every layer's response
    headers, so one coroutine and one ``send`` wrapper stand for six of each. The responses are the nested
    chain's (``tests/test_guard_fused.py`` checks it); when the app's response holds no header a layer would
    merge, replace or drop, the layers' headers are appended in one step.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GuardSettings | None = None,
        *,
        store: Store | None = None,
        parts: StackParts | None = None,
    ) -> None:
        optional(check_instance, "parts", parts, StackParts)
        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        self.app: ASGIApp = parts.wrap(app, shells)
        self.settings = parts.settings
        # The chain parts.wrap built, read as layers: those outside the envelope, the envelope, those inside.
        node: Any = self.app
        self._outer, node = _layers(node)
        self._envelope = node if isinstance(node, ErrorEnvelopeMiddleware) else None
        self._inner: list[LayerMiddleware] = []
        if self._envelope is not None:
            self._inner, node = _layers(node.app)
        self._app: ASGIApp = node
        self._merger = Merger([*self._outer, *self._inner])
        # Without a layer awaiting its decision (a rate limit on an asynchronous store), the request steps run
        # without one more coroutine.
        self._now = not any(layer.awaits for layer in (*self._outer, *self._inner))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = self._now
        entries: _Entries = []
        try:
            outer = self._outer
            answer = _enter_now(outer, scope, entries) if now else await _enter_async(outer, scope, entries)
            outside = len(entries)
            envelope = self._envelope
            if answer is None and envelope is not None:
                inner = self._inner
                try:  # what the layers inside the envelope raise is the envelope's to answer
                    app = _enter_now(inner, scope, entries) if now else await _enter_async(inner, scope, entries)
                except Exception as exc:
                    app = _raiser(exc)
                await envelope.run(app or self._app, scope, receive, send, self._finish, (entries, outside))
                return
            if answer is None:  # no envelope
                inner = self._inner
                answer = _enter_now(inner, scope, entries) if now else await _enter_async(inner, scope, entries)
            await (answer or self._app)(scope, receive, finishing(send, self._finish, (entries, outside), BOTH))
        finally:
            for layer, context in entries:
                if layer.ends:
                    layer.on_end(context, None)

    def _finish(self, context: tuple[_Entries, int], status: int, headers: Any, stage: int) -> list[Any]:
        """A response start's headers with the layers of ``stage`` (inside the envelope, outside, both)
        applied, innermost first, as the nested shells would."""
        entries, outside = context
        if stage != BOTH:
            inside = len(entries) - outside
            entries = entries[:inside] if stage == INNER else entries[inside:]
        return self._merger.merge(entries, status, headers)


def _enter_now(layers: list[LayerMiddleware], scope: Scope, entries: _Entries) -> ASGIApp | None:
    """Run each layer's request step; put the (layer, context) pairs first in ``entries`` (innermost first);
    the app of the first layer answering instead of the rest, if any."""
    for layer in layers:
        context = layer.on_request(scope)
        if context is None:
            continue
        if context.__class__ is Answer:
            answer: ASGIApp = context.app
            return answer
        entries.insert(0, (layer, context))
    return None


async def _enter_async(layers: list[LayerMiddleware], scope: Scope, entries: _Entries) -> ASGIApp | None:
    """:func:`_enter_now` with the decisions of the layers that ``awaits`` awaited."""
    for layer in layers:
        context = layer.on_request(scope)
        if context is None:
            continue
        if layer.awaits:
            context = await context
            if context is None:
                continue
        if context.__class__ is Answer:
            answer: ASGIApp = context.app
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


def _raiser(exc: Exception) -> ASGIApp:
    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return fail
