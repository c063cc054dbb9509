"""``Guard``: the whole ASGI stack in the documented order, from one settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._http import ASGIApp, Receive, Scope, Send
from .._layer import BOTH, INNER, OUTER
from .._stack import StackParts
from .._stack_guard import StackGuard
from ..config import GuardSettings
from ..integrations._route_views import find_starlette_app
from . import _shells as shells
from ._errors import ErrorEnvelopeMiddleware
from ._layer_shell import LayerMiddleware, finishing

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["Guard"]


class Guard(StackGuard):
    """Wrap an ASGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Each part can be switched off or configured in ``settings`` (none given: the ``BACKEND_GUARD_...`` environment
    variables over the defaults, :meth:`GuardSettings.from_env`); the compiled parts are on ``.parts``
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
        super().__init__(app, settings, store, parts, shells, LayerMiddleware, ErrorEnvelopeMiddleware)
        # A layer awaiting its decision (a rate limit on an asynchronous store) needs the slower way in; a stage
        # without request steps, or a stack without end steps, is not called.
        self._awaits = self._stack.awaits
        self._inner = self._stack.has_requests[INNER]
        self._ends = self._stack.has_ends
        #: The root path the wrapped app puts on the scope itself (``FastAPI(root_path="/api")``, which sets it
        #: on every request, after this Guard), else "": set here first, so the layers judge the path the
        #: app's router dispatches (``/login`` for ``/api/login``), not the path with the prefix.
        self._app_root = _own_root_path(app)
        self._steps = (self._stack.contexts, self._enter_outer, self._enter_inner, self._end)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app_root and scope["type"] != "lifespan":
            scope = {**scope, "root_path": self._app_root}  # what the app sets on it, a moment later
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "state" not in scope:  # for the layers and the app (route decorators leave values there)
            scope["state"] = {}
        # The stack's steps read into locals first: CPython 3.11 does not specialise ``self.step(...)`` when the
        # step is a function held on the instance (each such call looks the name up the slow way).
        new_contexts, enter_outer, enter_inner, end = self._steps
        contexts = new_contexts()
        try:
            answer = await self._stack.aenter(scope, contexts, OUTER) if self._awaits else enter_outer(scope, contexts)
            envelope = self._envelope
            if answer is not None or envelope is None:
                await self._unwrapped(answer, scope, receive, send, contexts)
                return
            app = None
            if self._inner:
                try:  # what the layers inside the envelope raise is the envelope's to answer
                    app = (
                        await self._stack.aenter(scope, contexts, INNER)
                        if self._awaits
                        else enter_inner(scope, contexts)
                    )
                except Exception as exc:
                    app = _raiser(exc)
            await envelope.run(app or self._app, scope, receive, send, self._finish, contexts)
        finally:
            if self._ends:
                end(contexts, None)

    async def _unwrapped(
        self, answer: ASGIApp | None, scope: Scope, receive: Receive, send: Send, contexts: list[Any]
    ) -> None:
        """An answer from a layer outside the envelope (a CORS preflight), or a stack without an envelope:
        one ``send`` wrapper adds every layer's headers."""
        if answer is None:
            answer = (
                await self._stack.aenter(scope, contexts, INNER) if self._awaits else self._enter_inner(scope, contexts)
            )
        await (answer or self._app)(scope, receive, finishing(send, self._finish, contexts, BOTH))


def _own_root_path(app: ASGIApp) -> str:
    """The ``root_path`` a wrapped FastAPI app sets on each request's scope itself (``FastAPI(root_path=...)``),
    else "" (a Starlette app or router has none: the server's ``root_path`` is already on the scope)."""
    root = getattr(find_starlette_app({}, app), "root_path", "")
    return root if isinstance(root, str) else ""


def _raiser(exc: Exception) -> ASGIApp:
    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return fail
