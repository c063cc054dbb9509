"""The protocol every layer of the stack speaks, whatever the server protocol (ASGI or WSGI).

A *layer* is one part of the stack (RequestId, SecureHeaders, CORS, RateLimit, ProxyHeaders) seen as two
steps around the app, and nothing else:

- ``on_request(request)``: read (and may rewrite) the request (an ASGI ``scope`` or a WSGI ``environ``) and
  return what the layer must remember for the response: a *context*; ``None`` when it has nothing to do on
  the response; or an :class:`Answer` when it answers instead of the app (a CORS preflight, a 429);
- ``on_response_start(context, status, headers)``: the response's header list with the layer's own merged in.

Optional refinements (attributes with safe defaults, see :class:`LayerDefaults`):

- ``ends``: True when ``on_end(context, body)`` must run once the app returned or raised (RequestId resets its
  logging context there; in WSGI it may wrap the body iterable it returns);
- ``awaits`` (ASGI only): True when ``on_request`` may return an awaitable of its result (a rate limit
  decision on an asynchronous store);
- ``touches`` / ``touched_prefixes``: the lower-case response header names the layer merges, replaces or
  drops, so a driver may ask ``appended(context, status, headers)`` for the headers the layer would only
  append to a response holding none of them (a tuple computed once, usually), or None when it cannot say;
- ``context_appended``: True when a context (not None) is itself what ``appended`` returns, so a driver appends
  it without the call (the rate limit fields);
- ``reads_content_type``: True when ``appended`` reads nothing of the response's headers but its Content-Type:
  a driver that found that value while checking the names calls ``appended_by_type(context, status,
  content_type)`` instead (the first Content-Type value, or None; the security headers' kind of response);
- ``request_context``: True when ``on_request`` only returns the request itself (after making the ASGI
  ``scope["state"]`` when missing, which a Guard does first anyway), so a driver may skip the call and keep the
  request as the context. Both are decided when the layer is built.

A *shell* drives one layer (``asgi.*Middleware``, ``wsgi.*Middleware``: a thin translation to the server
protocol); ``Guard`` drives the list of layers in one call with one ``send``/``start_response`` wrapper,
through these methods only. The ErrorEnvelope is no layer: it wraps the call (exceptions become documents)
and takes a :data:`Finish` function with which Guard adds every layer's headers to the starts it lets
through: ``finish(context, status, headers, stage)``, ``stage`` saying which layers apply (:data:`INNER`, the
layers inside the envelope, on the app's own start; :data:`OUTER` on what goes out; :data:`BOTH` at once).

Example::

    class Hello(LayerDefaults):
        def on_request(self, scope):
            return b"hello"                       # the context

        def on_response_start(self, context, status, headers):
            return [*headers, (b"x-hello", context)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "BOTH",
    "INNER",
    "OUTER",
    "Answer",
    "Finish",
    "Layer",
    "LayerDefaults",
    "Stack",
    "chain_layers",
    "status_code",
]

_H = TypeVar("_H")  # a header pair: (bytes, bytes) in ASGI, (str, str) in WSGI
_A = TypeVar("_A")  # an app of the server protocol

#: Which layers a :data:`Finish` call applies: those inside the envelope, those outside, or both at once.
INNER, OUTER, BOTH = 1, 2, 3

#: A Guard's work on a response start: (its per-request context, the status, the headers, the stage) -> the
#: headers sent.
Finish = Callable[[Any, int, Any, int], list[Any]]


class Answer(Generic[_A]):
    """What ``on_request`` returns to answer instead of the app: an app of the same server protocol.

    Example::

        return Answer(refuse)     # refuse(scope, receive, send) sends the 429
    """

    __slots__ = ("app",)

    def __init__(self, app: _A) -> None:
        self.app = app


class Layer(Protocol[_H]):
    """One part of the stack as a request step and a response-start step (see the module's documentation)."""

    ends: bool
    awaits: bool
    touches: frozenset[Any] | None
    touched_prefixes: tuple[Any, ...]
    context_appended: bool
    request_context: bool
    reads_content_type: bool

    def on_request(self, request: Any) -> Any:
        """None, a context for the response, an :class:`Answer` (or, with ``awaits``, an awaitable of one)."""

    def on_response_start(self, context: Any, status: int, headers: Iterable[_H]) -> list[_H]:
        """``headers`` with this layer's headers merged in (a new list: the app's may be a shared constant)."""

    def appended(self, context: Any, status: int, headers: Sequence[_H]) -> Sequence[_H] | None:
        """What ``on_response_start`` appends when ``headers`` hold none of ``touches``; None to merge."""

    def appended_by_type(self, context: Any, status: int, content_type: Any) -> Sequence[_H] | None:
        """``appended`` given the response's first Content-Type value (None: none), for ``reads_content_type``."""

    def on_end(self, context: Any, body: Any) -> Any:
        """Called (when ``ends``) once the app returned (``body``: WSGI's iterable, else None) or raised."""


class LayerDefaults:
    """The optional parts of :class:`Layer` with their neutral values: subclass and override what you need.

    Example::

        class Tag(LayerDefaults):
            def on_request(self, request): return b"1"
            def on_response_start(self, context, status, headers): return [*headers, (b"x-tag", context)]
    """

    ends = False
    awaits = False
    #: None: the layer may touch any header, so a driver never asks ``appended``.
    touches: frozenset[Any] | None = None
    touched_prefixes: tuple[Any, ...] = ()
    #: True: a context is what ``appended`` returns (a driver need not call it).
    context_appended = False
    #: True: ``on_request`` returns the request (a driver may skip the call and keep the request as the context).
    request_context = False
    #: True: a driver may call ``appended_by_type`` with the response's Content-Type instead of ``appended``.
    reads_content_type = False

    def on_request(self, request: Any) -> Any:
        """Nothing to do on the response (override)."""
        return None

    def on_response_start(self, context: Any, status: int, headers: Iterable[Any]) -> list[Any]:
        """The headers unchanged, as a new list (override)."""
        return list(headers)

    def appended(self, context: Any, status: int, headers: Sequence[Any]) -> Sequence[Any] | None:
        """None: merge through ``on_response_start`` (override with a precomputed answer for speed)."""
        return None

    def appended_by_type(self, context: Any, status: int, content_type: Any) -> Sequence[Any] | None:
        """None: merge through ``on_response_start`` (override with ``reads_content_type = True``)."""
        return None

    def on_end(self, context: Any, body: Any) -> Any:
        """``body`` unchanged (override with ``ends = True``)."""
        return body


def status_code(status: str) -> int:
    """The code of a WSGI status line (``"304 Not Modified"`` -> 304); 0 when it is malformed.

    Example::

        status_code("404 Not Found")   # 404
    """
    code = status[:3] if isinstance(status, str) else ""
    return int(code) if code.isascii() and code.isdigit() else 0


def chain_layers(node: Any, kind: type[Any]) -> tuple[list[Any], Any]:
    """The layers (instances of ``kind``) at the top of a chain of middlewares, each one's ``.app`` the next,
    and the first node that is none.

    Example::

        outer, rest = chain_layers(guard.app, LayerMiddleware)
    """
    found: list[Any] = []
    while isinstance(node, kind):
        found.append(node)
        node = node.app
    return found, node


#: Bound of :class:`Stack`'s memory of clean header names (they come from the app, any spelling).
_CLEAN_NAMES = 256


class Stack:
    """A list of layers driven as one, the way a ``Guard`` runs its stack in one call.

    ``layers`` (outermost first) and how many of them are ``outside`` an ErrorEnvelope (the rest are inside
    it). Per request the contexts are a list with one slot per layer (None: nothing to do on the response).
    Everything a request needs is prepared here once: each layer's bound steps, in the order they run (None for
    a step a layer lets the driver skip: ``request_context``, ``context_appended``).

    On a response start, when the layers' ``touches`` are known and pairwise apart, a response holding none of
    those names only gets each layer's ``appended`` headers, in one new list (the names found clean are
    remembered, bounded); otherwise each layer's ``on_response_start`` runs in turn, innermost first, as the
    nested shells would.

    Example::

        stack = Stack([request_id, cors, rate_limit], outside=2)
        contexts = stack.contexts()
        answer = stack.enter(scope, contexts, OUTER)      # the layers outside the envelope
        headers = stack.finish(contexts, 200, headers, BOTH)
        stack.end(contexts, None)
    """

    def __init__(self, layers: Sequence[Layer[Any]], outside: int) -> None:
        self.layers = tuple(layers)
        self.outside = outside
        self._kept, self._requests = _request_steps(self.layers, outside)
        self._appends, self._merges, self._ends = _response_steps(self.layers, outside)
        #: Whether a stage has request steps to run (:data:`INNER`, :data:`OUTER`...), and whether :meth:`end` has
        #: any: a driver skips the calls that would do nothing.
        self.has_requests = tuple(bool(steps or kept) for steps, kept in zip(self._requests, self._kept, strict=True))
        self._entering = tuple(self._compose_enter(stage) for stage in (0, INNER, OUTER, BOTH))
        self.has_ends = bool(self._ends)
        #: :meth:`end` composed once: ``stack.ending(contexts, body)``.
        self.ending: Callable[[list[Any], Any], Any] = _compose_end(self._ends)
        found = _apart(self.layers)
        #: Every touched name and prefix; None when the layers could touch each other's headers.
        self.touched: frozenset[Any] | None = found[0] if found is not None else None
        self.prefixes: tuple[Any, ...] = found[1] if found is not None else ()
        #: Header names found clean (remembered, bounded): True for a Content-Type, False for any other.
        self._clean: dict[Any, bool] = {}
        #: A new request's contexts: ``stack.contexts()`` is a list with one empty slot per layer (a copy).
        self.contexts: Callable[[], list[Any]] = [None for _ in self.layers].copy

    @classmethod
    def from_chain(cls, app: Any, layer: type[Any], envelope: type[Any]) -> tuple[Stack, Any, Any]:
        """Read a chain of middlewares (each one's ``.app`` the next) as a Guard drives it: (the stack of the
        layers, outside the envelope first; the envelope, or None; the app after the last layer).

        Example::

            stack, envelope, app = Stack.from_chain(parts.wrap(app, shells), LayerMiddleware, ErrorEnvelope)
        """
        outer, node = chain_layers(app, layer)
        found = node if isinstance(node, envelope) else None
        inner: list[Any] = []
        if found is not None:
            inner, node = chain_layers(node.app, layer)
        return cls([*outer, *inner], outside=len(outer)), found, node

    @property
    def awaits(self) -> bool:
        """True when a layer may await its decision: then :meth:`aenter` runs the request steps."""
        return any(layer.awaits for layer in self.layers)

    def enter(self, request: Any, contexts: list[Any], stage: int) -> Any:
        """Run the request steps of the layers of ``stage`` (outermost first) on ``request``, keeping their
        contexts; the app of the first layer answering instead of the rest (its :class:`Answer`'s), else
        None. (Layers that ``awaits`` are the ASGI Guard's to run.) A driver binds :meth:`entering` once instead."""
        return self._entering[stage](request, contexts)

    def entering(self, stage: int) -> Callable[[Any, list[Any]], Any]:
        """:meth:`enter` for ``stage`` as a function of (request, contexts), composed once from the stage's steps.

        Example::

            enter_outer = stack.entering(OUTER)
            answer = enter_outer(scope, contexts)
        """
        return self._entering[stage]

    def _compose_enter(self, stage: int) -> Callable[[Any, list[Any]], Any]:
        """The request steps of ``stage`` in one function: the layers keeping the request as their context get it
        first (a step may read what the Guard made on it), without a call; then each step in turn."""
        kept, steps = self._kept[stage], self._requests[stage]

        def enter_steps(request: Any, contexts: list[Any]) -> Any:
            for i, on_request in steps:
                context = on_request(request)
                if context.__class__ is Answer:
                    return context.app
                contexts[i] = context
            return None

        if not kept and len(steps) == 1:  # the usual inner stage: the rate limit alone
            ((at, step),) = steps

            def enter_one(request: Any, contexts: list[Any]) -> Any:
                context = step(request)
                if context.__class__ is Answer:
                    return context.app
                contexts[at] = context
                return None

            return enter_one
        if not kept:
            return enter_steps

        def enter_kept(request: Any, contexts: list[Any]) -> Any:
            for i in kept:
                contexts[i] = request
            i = -1
            try:
                for i, on_request in steps:
                    context = on_request(request)
                    if context.__class__ is Answer:
                        _unreached(contexts, kept, i)
                        return context.app
                    contexts[i] = context
            except BaseException:
                _unreached(contexts, kept, i)
                raise
            return None

        return enter_kept

    async def aenter(self, request: Any, contexts: list[Any], stage: int) -> Any:
        """:meth:`enter`, awaiting the decisions of the layers that ``awaits`` (ASGI)."""
        first, last = (self.outside, len(self.layers)) if stage == INNER else (0, self.outside)
        for i in range(first, last):
            layer = self.layers[i]
            context = request if layer.request_context else layer.on_request(request)
            if context is not None and layer.awaits:
                context = await context
            if context is not None:
                if context.__class__ is Answer:
                    return context.app
                contexts[i] = context
        return None

    def finish(self, contexts: list[Any], status: int, headers: Any, stage: int) -> list[Any]:
        """``headers`` with the response steps of the layers of ``stage`` applied, innermost first: a Guard's
        :data:`Finish`."""
        if headers.__class__ is not list:  # ASGI allows any iterable of pairs: a one-shot one is read once here
            headers = list(headers)
        if self.touched is not None:
            clean = self._clean
            content_type = None  # the first Content-Type value, found while checking the names
            for name, value in headers:
                typed = clean.get(name)
                if typed is None:
                    typed = self._learn(name)
                    if typed is None:
                        break
                if typed and content_type is None:
                    content_type = value
            else:
                out = list(headers)
                for i, appended, by_type in self._appends[stage]:
                    context = contexts[i]
                    if context is None:
                        continue
                    part = (
                        context if appended is None else appended(context, status, content_type if by_type else headers)
                    )
                    if part is None:
                        break
                    out.extend(part)
                else:
                    return out
        return self._merged(contexts, status, headers, stage)

    def _merged(self, contexts: list[Any], status: int, headers: Any, stage: int) -> list[Any]:
        """``headers`` with each layer's ``on_response_start`` applied in turn, innermost first (the way of the
        nested shells: a response holding a header some layer touches)."""
        for i, on_response_start in self._merges[stage]:
            context = contexts[i]
            if context is not None:
                headers = on_response_start(context, status, headers)
        return headers if isinstance(headers, list) else list(headers)

    def end(self, contexts: list[Any], body: Any) -> Any:
        """Run the end steps (innermost first) of the layers that entered; the body they return. (A driver binds
        :attr:`ending`, the same composed once.)"""
        return self.ending(contexts, body)

    def _learn(self, name: Any) -> bool | None:
        """None when a layer touches a response header named ``name``; else whether it is a Content-Type
        (remembered, bounded)."""
        lower = name.lower()
        if self.touched is None or lower in self.touched or (self.prefixes and lower.startswith(self.prefixes)):
            return None
        # Never a bytes name compared with a str one (a BytesWarning, an error under ``python -bb``).
        typed: bool = lower == (b"content-type" if isinstance(lower, bytes) else "content-type")
        if len(self._clean) < _CLEAN_NAMES:
            self._clean[name] = typed
        return typed


def _request_steps(layers: tuple[Layer[Any], ...], outside: int) -> tuple[Any, Any]:
    """The request steps by stage, outermost first: the layers keeping the request as their context (no call)
    apart from the others' ``on_request``."""
    numbered = list(enumerate(layers))
    kept = _by_stage([i for i, layer in numbered if layer.request_context], outside, key=int)
    requests = _by_stage([(i, layer.on_request) for i, layer in numbered if not layer.request_context], outside)
    return kept, requests


def _response_steps(layers: tuple[Layer[Any], ...], outside: int) -> tuple[Any, Any, tuple[Any, ...]]:
    """The response steps by stage, innermost first: the appended headers (the fast path; None where the context
    is what is appended; whether the step takes the Content-Type) and the merges; and the end steps of the layers
    that have one."""
    inward = list(reversed(list(enumerate(layers))))
    appends = _by_stage([(i, *_appended_step(layer)) for i, layer in inward], outside)
    merges = _by_stage([(i, layer.on_response_start) for i, layer in inward], outside)
    ends = tuple((i, layer.on_end) for i, layer in inward if layer.ends)
    return appends, merges, ends


def _appended_step(layer: Layer[Any]) -> tuple[Any, bool]:
    """A layer's step on the fast path and whether it takes the Content-Type (``appended_by_type``)."""
    if layer.context_appended:
        return None, False
    if getattr(layer, "reads_content_type", False):
        return layer.appended_by_type, True
    return layer.appended, False


def _by_stage(steps: list[Any], outside: int, key: Callable[[Any], int] = itemgetter(0)) -> tuple[tuple[Any, ...], ...]:
    """Steps (layer index, bound method; or, with ``key=int``, layer indices) indexed by stage: none, :data:`INNER`
    (the layers from ``outside`` on), :data:`OUTER` (those before), :data:`BOTH`; each keeps the order given."""
    inner = tuple(step for step in steps if key(step) >= outside)
    outer = tuple(step for step in steps if key(step) < outside)
    return ((), inner, outer, tuple(steps))


def _compose_end(steps: tuple[tuple[int, Any], ...]) -> Callable[[list[Any], Any], Any]:
    """The end steps (layer index, bound ``on_end``) in one function of (contexts, body)."""
    if len(steps) == 1:
        ((at, on_end),) = steps

        def end_one(contexts: list[Any], body: Any) -> Any:
            context = contexts[at]
            return body if context is None else on_end(context, body)

        return end_one

    def end_steps(contexts: list[Any], body: Any) -> Any:
        for i, on_end in steps:
            context = contexts[i]
            if context is not None:
                body = on_end(context, body)
        return body

    return end_steps


def _unreached(contexts: list[Any], kept: tuple[int, ...], at: int) -> None:
    """The layer ``at`` answered or raised: the request never reached the layers after it (as nested), so the
    request kept as their context goes."""
    for i in kept:
        if i > at:
            contexts[i] = None


def _apart(layers: Sequence[Layer[Any]]) -> tuple[frozenset[Any], tuple[Any, ...]] | None:
    """The union of the layers' touched names and prefixes; None when a layer may touch any header or two
    layers touch the same one (then a layer's appended headers could be another's to merge)."""
    names: set[Any] = set()
    prefixes: tuple[Any, ...] = ()
    for layer in layers:
        touches = layer.touches
        if touches is None or not names.isdisjoint(touches):
            return None
        own = layer.touched_prefixes
        if any(n.startswith(p) for n in touches for p in prefixes) or any(n.startswith(p) for n in names for p in own):
            return None
        names |= touches
        prefixes += own
    return frozenset(names), prefixes
