"""``Guard``: the whole WSGI stack in the documented order, from one settings object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._http import StartResponse, WSGIApp
from .._layer import BOTH
from .._stack import StackParts
from .._stack_guard import StackGuard
from ..config import GuardSettings
from . import _shells as shells
from ._errors import ErrorEnvelopeMiddleware
from ._layer_shell import LayerMiddleware, finishing

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["Guard"]


class Guard(StackGuard):
    """Wrap a WSGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first);
    with ``trusted_hosts``, ``https_redirect`` and ``csrf`` switched on, TrustedHost -> HTTPSRedirect ->
    CrossOriginProtection sit between ErrorEnvelope and RateLimit.

    The stack is the nested middlewares on ``.app``; a request runs fused: Guard drives the same middlewares
    as layers (:mod:`backend_guard._layer`), with one ``start_response`` wrapper for all of them. No ``settings``:
    the ``BACKEND_GUARD_...`` environment variables over the defaults (:meth:`GuardSettings.from_env`).

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
        super().__init__(app, settings, store, parts, shells, LayerMiddleware, ErrorEnvelopeMiddleware)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        contexts = self._stack.contexts()
        try:  # every layer's request step, then the app (or the answer of a layer) under the envelope
            answer = self._enter_outer(environ, contexts)
            envelope = self._envelope
            if answer is not None or envelope is None:  # a layer answered (a CORS preflight), or no envelope
                app: WSGIApp = answer or self._enter_inner(environ, contexts) or self._app
                body = app(environ, finishing(start_response, self._finish, contexts, BOTH))
            else:
                try:  # what the layers inside the envelope raise is the envelope's to answer
                    app = self._enter_inner(environ, contexts) or self._app
                except Exception as exc:
                    app = _raiser(exc)
                body = envelope.run(app, environ, start_response, self._finish, contexts)
        except BaseException:
            self._end(contexts, None)
            raise
        ended: Iterable[bytes] = self._end(contexts, body)
        return ended


def _raiser(exc: Exception) -> WSGIApp:
    def fail(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raise exc

    return fail
