"""What ``asgi.Guard`` and ``wsgi.Guard`` share: the stack built from settings, read once as layers.

Each ``Guard`` is this plus the one call of its server protocol (a coroutine, or a WSGI call) that drives the
:class:`~backend_guard._layer.Stack` it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._check import check_instance, optional
from ._layer import INNER, OUTER, Stack
from ._stack import StackParts

if TYPE_CHECKING:
    from .config import GuardSettings
    from .storage import Store

__all__ = ["StackGuard"]


class StackGuard:
    """The parts (from ``settings``, or ``parts`` given whole), the nested chain of ``shells`` on ``.app``, and
    that chain read as layers: those outside the ``envelope`` type, the envelope, those inside, the app.

    Example::

        class Guard(StackGuard):
            def __init__(self, app, settings=None, *, store=None, parts=None):
                super().__init__(app, settings, store, parts, shells, LayerMiddleware, ErrorEnvelopeMiddleware)
    """

    def __init__(
        self,
        app: Any,
        settings: GuardSettings | None,
        store: Store | None,
        parts: StackParts | None,
        shells: Any,
        layer: type[Any],
        envelope: type[Any],
    ) -> None:
        optional(check_instance, "parts", parts, StackParts)
        self.parts: StackParts = parts if parts is not None else StackParts.build(settings, store=store)
        self.app: Any = self.parts.wrap(app, shells)
        self.settings = self.parts.settings
        self._stack, self._envelope, self._app = Stack.from_chain(self.app, layer, envelope)
        # The stack's steps, bound once for the Guard's call.
        stack = self._stack
        self._enter_outer = stack.entering(OUTER)
        self._enter_inner = stack.entering(INNER)
        self._finish = stack.finish
        self._end = stack.ending
