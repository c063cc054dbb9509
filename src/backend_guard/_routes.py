"""One mechanism for per-route decorators in FastAPI, Starlette, Flask and Django, sync and async.

A part (rate limits, lockout, authentication, a per-route header policy) writes a :class:`RouteHooks` with
plain logic over a :class:`RouteCall`; :func:`guard_route` turns it into a decorator that works on any of the
four frameworks' route functions:

- the route does not need a ``request`` parameter: Starlette and Django pass the request as an argument,
  Flask has its request context, and for FastAPI the wrapper's ``__signature__`` gains two keyword-only
  parameters typed ``Request`` and ``Response``, which FastAPI fills and leaves out of the OpenAPI schema;
- a sync route gets a sync wrapper (run in FastAPI's threadpool, so the sync hooks may block) and an async
  route an async wrapper (the async hooks never block the loop);
- a :class:`~backend_guard.exceptions.GuardError` raised by a hook becomes a problem+json response in the
  framework's own response type, so the decorator works even where no error handler is installed;
- the route template (``/users/{id}``, ``/users/<int:id>``, ``users/<int:id>/``) is on ``call.view.route``.

Decorators stack: only the innermost wrapper removes the injected FastAPI parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

from ._adapter import FrameworkAdapter, adapter_named, adapter_of, context_request
from ._http import deny_handshake, text_headers
from ._request_ids import request_id_of
from ._route_signature import INJECTED_REQUEST as _REQ
from ._route_signature import INJECTED_RESPONSE as _RESP
from ._route_signature import route_signature
from ._view import RequestView
from .clientip import ClientIP
from .errors import ErrorPolicy
from .errors._policy import DEFAULT_POLICY
from .exceptions import GuardError
from .integrations._adapter_starlette import ADAPTER as STARLETTE
from .integrations._adapter_starlette import refusal_exception, starlette_classes

__all__ = [
    "RouteCall",
    "RouteHooks",
    "declare_problem_statuses",
    "fastapi_dependency",
    "guard_route",
    "native_problem",
    "problem_statuses",
    "status_of_exception",
]

F = TypeVar("F", bound=Callable[..., Any])

_GUARDED = "__backend_guard_route__"
_STATUSES = "__backend_guard_statuses__"
_NO_PROXIES = ClientIP()


class RouteCall:
    """One call of a guarded route, as the hooks see it.

    ``view`` is the plain :class:`~backend_guard.request.RequestView` (built when first read: a hook that needs
    only the client's key or the route template reads :attr:`scope`/:attr:`environ` and :attr:`route`);
    ``request`` the framework's own request object; ``framework`` is ``"starlette"`` (FastAPI too), ``"flask"``
    or ``"django"``; ``state`` is scratch space shared by ``before`` and ``after``; headers added with
    :meth:`add_header` go on the response (success or refusal); ``endpoint`` is the route function answering,
    when known (the decorated function, or the endpoint FastAPI routed a dependency's request to).

    Example::

        class Audit(RouteHooks):
            def before(self, call: RouteCall) -> None:
                call.add_header("X-Route", call.view.route_or_path)
    """

    __slots__ = (
        "_client_ip",
        "_view",
        "adapter",
        "endpoint",
        "raw_headers",
        "request",
        "response_headers",
        "state",
    )

    def __init__(
        self,
        view: RequestView | None = None,
        request: Any = None,
        framework: str = "",
        state: dict[str, Any] | None = None,
        response_headers: list[tuple[str, str]] | None = None,
        endpoint: Any = None,
        adapter: FrameworkAdapter | None = None,
        client_ip: ClientIP | None = None,
    ) -> None:
        self._view = view
        self.request = request
        if adapter is None and framework:
            adapter = adapter_named(framework)
        #: The adapter of the request's framework (None only for a call built around a bare view).
        self.adapter: FrameworkAdapter = adapter  # type: ignore[assignment]
        self.state: dict[str, Any] = {} if state is None else state
        self.response_headers: list[tuple[str, str]] = [] if response_headers is None else response_headers
        #: Header fields already encoded for the ASGI response (see :meth:`add_raw_headers`), or None.
        self.raw_headers: list[tuple[bytes, bytes]] | None = None
        self.endpoint = endpoint
        self._client_ip = client_ip

    @property
    def view(self) -> RequestView:
        """The request's :class:`~backend_guard.request.RequestView` (built on first use, then kept)."""
        view = self._view
        if view is None:
            view = self._view = self.adapter.view(self.request, self._client_ip)
        return view

    @property
    def framework(self) -> str:
        """``"starlette"`` (FastAPI too), ``"flask"`` or ``"django"``: the name of the request's adapter (``""`` for
        a call built around a bare view)."""
        adapter = self.adapter
        return "" if adapter is None else adapter.name

    @property
    def route(self) -> str | None:
        """The route template the framework matched (``call.view.route``, read without building the view)."""
        view = self._view
        return view.route if view is not None else self.adapter.route_of(self.request)

    @property
    def client(self) -> str:
        """The client address, resolved through trusted proxies only (``call.view.client``, read from the scope or
        environ without building the view)."""
        if self.request is None:  # a call built around a bare view
            return self.view.client
        client_ip = self._client_ip or _NO_PROXIES
        scope = self.adapter.scope_of(self.request)  # self.scope, without a property's call
        return client_ip.from_scope(scope) if scope is not None else client_ip.from_environ(self.environ)

    @property
    def scope(self) -> Any:
        """The request's ASGI scope, if it has one (Starlette, Django under ASGI), else None."""
        return self.adapter.scope_of(self.request)

    @property
    def environ(self) -> Any:
        """The request's WSGI environ (Django's ``META``), if it has one, else None."""
        return self.adapter.environ_of(self.request)

    def add_header(self, name: str, value: str) -> None:
        """Put ``name: value`` on this route's response (replacing a header of the same name)."""
        self.response_headers.append((name, value))

    def add_raw_headers(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """Put ASGI header pairs (lower-case names, latin-1 bytes) on this route's successful response, each
        replacing a header of the same name; only where the framework's responses take them
        (``call.adapter.raw_headers``), else use :meth:`add_header`."""
        self.raw_headers = pairs if self.raw_headers is None else self.raw_headers + pairs

    def set_attr(self, name: str, value: Any) -> None:
        """Offer a value to the route: ``request.state.name``, ``flask.g.name`` or Django's ``request.name``."""
        self.adapter.set_attr(self.request, name, value)

    def set_state(self, key: str, value: Any) -> None:
        """Leave a value for the middlewares (``scope["state"][key]`` on ASGI, ``environ[key]`` on WSGI)."""
        scope = self.scope
        if isinstance(scope, dict):
            scope.setdefault("state", {})[key] = value
        environ = self.environ
        if isinstance(environ, dict):
            environ[key] = value

    def request_id(self) -> str | None:
        """The request id set by a RequestIdMiddleware, if any."""
        return request_id_of(self.request)


class RouteHooks:
    """What a part does around a route; override what you need (the defaults do nothing).

    ``before`` runs before the route and may raise a GuardError to refuse the request; ``after`` gets the
    response status (or the status the route's exception maps to) and returns headers to add. The async
    twins default to calling the sync ones; override them when the work does I/O.

    Example::

        class OnlyJson(RouteHooks):
            def before(self, call: RouteCall) -> None:
                if "json" not in (call.view.header("content-type") or ""):
                    raise bg.GuardError("JSON only")
    """

    #: The error statuses this part can answer with on the routes it guards (documented in FastAPI's OpenAPI).
    statuses: tuple[int, ...] = ()

    def fastapi_parameters(self) -> list[inspect.Parameter]:
        """Keyword-only parameters for FastAPI to fill on a guarded route (e.g. a ``Security`` declaration).

        They only shape FastAPI's OpenAPI; their values are dropped before the route runs.
        """
        return []

    def before(self, call: RouteCall) -> None:
        """Runs before a sync route."""

    async def abefore(self, call: RouteCall) -> None:
        """Runs before an async route."""
        self.before(call)

    def after(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        """Runs after a sync route; returns headers to add."""
        return []

    async def aafter(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        """Runs after an async route; returns headers to add."""
        return self.after(call, status)

    def runs_inline(self) -> bool:
        """True when ``abefore`` does no I/O (the default twin, which calls ``before``): an async route then calls
        ``before`` itself, one coroutine fewer per request. Override when only some configurations do I/O."""
        return type(self).abefore is RouteHooks.abefore

    def has_after(self) -> bool:
        """True when this part does anything after the route (``after`` or ``aafter`` overridden); else the route's
        response is only read when headers were added to it."""
        cls = type(self)
        return cls.after is not RouteHooks.after or cls.aafter is not RouteHooks.aafter


def status_of_exception(exc: BaseException) -> int:
    """The status a framework will answer for ``exc`` (HTTPException codes, Django's 404/403/400, else 500)."""
    if isinstance(exc, GuardError):
        return exc.status
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    name = type(exc).__name__
    return {"Http404": 404, "PermissionDenied": 403, "SuspiciousOperation": 400, "BadRequest": 400}.get(name, 500)


def _find_request(
    args: tuple[Any, ...], kwargs: dict[str, Any], req_name: str = _REQ
) -> tuple[Any, FrameworkAdapter | None]:
    """The call's request and its framework's adapter: the ``Request`` FastAPI filled, a request among the first
    two arguments (a Django view's, a method view's), or the one of a request context (Flask's)."""
    injected = kwargs.get(req_name)
    if injected is not None:
        return injected, STARLETTE
    for arg in args[:2]:
        adapter = adapter_of(arg)
        if adapter is not None:
            return arg, adapter
    return context_request()


def native_problem(
    framework: str,
    exc: GuardError,
    request_id: str | None,
    extra: list[tuple[str, str]] | None = None,
    policy: ErrorPolicy | None = None,
) -> Any:
    """An error response in the framework's own type, rendered under ``policy`` (default: a problem document).

    Example::

        return native_problem("flask", bg.RateLimited(retry_after=3), request_id=None)
    """
    return _problem(adapter_named(framework), exc, request_id, extra, policy)


def _problem(
    adapter: FrameworkAdapter,
    exc: GuardError,
    request_id: str | None,
    extra: list[tuple[str, str]] | None,
    policy: ErrorPolicy | None = None,
) -> Any:
    status, headers, body = (policy or DEFAULT_POLICY).render(exc, request_id=request_id)
    headers = [h for h in headers if h[0] != "content-length"] + list(extra or [])
    resp = adapter.bare_response(body, status)
    _set_headers(adapter, resp, headers)
    return resp


def _set_headers(adapter: FrameworkAdapter, target: Any, headers: list[tuple[str, str]]) -> None:
    """Put ``headers`` on the response ``target`` (if any), each replacing a header of the same name."""
    if target is not None and headers:
        adapter.set_headers(target, headers)


def declare_problem_statuses(func: Callable[..., Any], statuses: Iterable[int]) -> None:
    """Record on a route function or a dependency the error statuses its guards can answer with.

    :func:`problem_statuses` reads them back (FastAPI's OpenAPI lists them on the operations using it).

    Example::

        declare_problem_statuses(dependency, (400, 429))
    """
    setattr(func, _STATUSES, problem_statuses(func) | frozenset(statuses))


def problem_statuses(func: Callable[..., Any]) -> frozenset[int]:
    """The error statuses the guards on a route function or a dependency can answer with (empty if none).

    Example::

        problem_statuses(route.endpoint)   # frozenset({401, 403}) under tm.require_auth(scopes="admin")
    """
    return frozenset(getattr(func, _STATUSES, ()))


def _dropped(func: Callable[..., Any], req_name: str, resp_name: str, own: list[str]) -> tuple[str, ...]:
    """The parameters a call's keyword arguments lose before the route runs: the hooks' own (declared for
    FastAPI's OpenAPI only) and, on the innermost wrapper, the ``Request``/``Response`` we injected."""
    if getattr(func, _GUARDED, False):  # an outer decorator: the innermost one drops what was injected
        return tuple(own)
    injected = [name for name, ours in ((req_name, _REQ), (resp_name, _RESP)) if name == ours]
    return (*own, *injected)


class _Prepare:
    """Turns one call of a decorated route into its :class:`RouteCall`; what it needs is settled at decoration."""

    __slots__ = ("client_ip", "context", "dropped", "dropped_names", "errors", "func", "known", "req_name", "resp_name")

    def __init__(
        self,
        func: Callable[..., Any],
        client_ip: ClientIP | None,
        req_name: str,
        resp_name: str,
        own: list[str],
        errors: ErrorPolicy | None = None,
    ) -> None:
        self.func = func
        self.client_ip = client_ip
        #: The policy a refusal is rendered with (None: problem documents).
        self.errors = errors
        self.req_name = req_name
        self.resp_name = resp_name
        self.dropped = _dropped(func, req_name, resp_name, own)
        self.dropped_names = frozenset(self.dropped)  # asked first: a view's URL arguments hold none of them
        #: The class of the request the last call had as its first argument, and its adapter (None: none yet).
        self.known: tuple[type, FrameworkAdapter] | None = None
        #: The adapter whose request context the last call without arguments had its request from (Flask's).
        self.context: FrameworkAdapter | None = None

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, FrameworkAdapter]:
        """:func:`_find_request` (TypeError when there is no request), first asking the adapter the last call
        without arguments found its request in a context (a Flask route's); remembered for :meth:`call`: the class
        of a first argument that is the request (a class is a request of one framework, or of none, for good), and
        the adapter of a request found in a context."""
        context = self.context
        if context is not None and not args and kwargs.get(self.req_name) is None:
            found = context.current_request()
            if found is not None:
                return found, context
        request, adapter = _find_request(args, kwargs, self.req_name)
        if request is None or adapter is None:
            raise TypeError(
                f"{getattr(self.func, '__qualname__', self.func)!r} was called without a request that backend_guard "
                "knows (FastAPI, Starlette, Flask or Django)."
            )
        if args and args[0] is request:
            self.known = (request.__class__, adapter)
        elif not args and adapter.contextual:
            self.context = adapter
        return request, adapter

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[RouteCall, Any]:
        """The call's RouteCall (its view built only if a hook reads it) and the Response FastAPI injected (if
        any); drops our parameters from ``kwargs``. A first argument of the class the last call's request was is
        the request (a plain Starlette route's, a Django view's): the adapters are not asked again, and no Response
        was injected (FastAPI, which fills our parameters, passes no positional argument)."""
        known = self.known
        if known is not None and args and args[0].__class__ is known[0] and kwargs.get(self.req_name) is None:
            if kwargs and not self.dropped_names.isdisjoint(kwargs):  # dropped as on any call (the first one's too)
                for name in self.dropped:
                    kwargs.pop(name, None)
            return RouteCall(None, args[0], "", None, None, self.func, known[1], self.client_ip), None
        request, adapter = self._request(args, kwargs)
        injected_response = kwargs.get(self.resp_name) if kwargs else None  # FastAPI's (ours or the route's own)
        if kwargs and not self.dropped_names.isdisjoint(kwargs):  # our injected parameters are dropped
            for name in self.dropped:
                kwargs.pop(name, None)
        return RouteCall(None, request, "", None, None, self.func, adapter, self.client_ip), injected_response


def _async_wrapper(func: Callable[..., Awaitable[Any]], hooks: RouteHooks, prepare: _Prepare) -> Any:
    inline, after = hooks.runs_inline(), hooks.has_after()

    @functools.wraps(func)
    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        call, injected = prepare.call(args, kwargs)  # a method: cheaper to call than __call__
        try:
            if inline:
                hooks.before(call)
            else:
                await hooks.abefore(call)
        except GuardError as exc:
            problem = _problem(call.adapter, exc, call.request_id(), call.response_headers, prepare.errors)
            if _is_websocket(call.adapter, call.request):  # a WebSocket route: refused before accept, nothing to return
                await _deny_websocket(call.request, problem)
                return None
            return problem
        if not after:
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                _keep_on_error(call, exc, [])
                raise
            return _respond(call, injected, result)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _keep_on_error(call, exc, await hooks.aafter(call, status_of_exception(exc)))
            raise
        status, target, out = call.adapter.status_and_target(result, injected)
        return _respond_on(call, target, out, await hooks.aafter(call, status))

    return async_wrapper


def _is_websocket(adapter: FrameworkAdapter, request: Any) -> bool:
    """True when ``request`` is a WebSocket connection (an ASGI ``websocket`` scope)."""
    scope = adapter.scope_of(request)
    return isinstance(scope, dict) and scope.get("type") == "websocket"


async def _deny_websocket(websocket: Any, problem: Any) -> None:
    """Refuse a WebSocket handshake before accept: the problem document as the denial response when the server
    offers that extension (uvicorn does), else a close with 1008 (policy violation; the server answers 403)."""
    await deny_handshake(websocket.scope, websocket.send, problem.status_code, problem.raw_headers, problem.body)


def _sync_wrapper(func: Callable[..., Any], hooks: RouteHooks, prepare: _Prepare) -> Any:
    after = hooks.has_after()

    @functools.wraps(func)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        call, injected = prepare.call(args, kwargs)  # a method: cheaper to call than __call__
        try:
            hooks.before(call)
        except GuardError as exc:
            return _problem(call.adapter, exc, call.request_id(), call.response_headers, prepare.errors)
        if not after:
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _keep_on_error(call, exc, [])
                raise
            return _respond(call, injected, result)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _keep_on_error(call, exc, hooks.after(call, status_of_exception(exc)))
            raise
        # One response object (Flask: make_response once), its status read and its headers set on it.
        status, target, out = call.adapter.status_and_target(result, injected)
        return _respond_on(call, target, out, hooks.after(call, status))

    return sync_wrapper


def _keep_on_error(call: RouteCall, exc: BaseException, headers: list[tuple[str, str]]) -> None:
    """The call's and the hooks' header fields (a rate limit's ``RateLimit``...) on the response made of ``exc``:
    on a GuardError itself (so a route's own ``InvalidCredentials`` looks like a hook's refusal, e.g. a generic
    lockout's), else where the framework lets a route reach that response (Flask's responses, Starlette's
    ``HTTPException``); the exception goes on either way."""
    fields = call.response_headers + headers if headers else call.response_headers
    if call.raw_headers:  # set first on a response, so the text fields replace them: first here too
        fields = text_headers(call.raw_headers) + fields
    if not fields:
        return
    if isinstance(exc, GuardError):  # rendered by backend_guard's handlers on every framework, as a hook's refusal
        exc.headers = {**exc.headers, **dict(fields)}  # is (its fields after the error's own)
    else:
        call.adapter.headers_on_error(call.request, exc, fields)


def _respond(call: RouteCall, injected: Any, result: Any) -> Any:
    """What the route returned, with the call's headers set on its response (read only when there are some)."""
    if not call.response_headers and call.raw_headers is None:
        return result
    _, target, out = call.adapter.status_and_target(result, injected)
    return _respond_on(call, target, out, [])


def _respond_on(call: RouteCall, target: Any, out: Any, headers: list[tuple[str, str]]) -> Any:
    """``out`` (the route's response) with the call's and the hooks' headers set on ``target``."""
    if target is not None:
        if call.raw_headers is not None:
            call.adapter.set_raw_headers(target, call.raw_headers)
        fields = call.response_headers + headers if headers else call.response_headers
        if fields:
            call.adapter.set_headers(target, fields)
    return out


def guard_route(
    hooks: RouteHooks, *, client_ip: ClientIP | None = None, errors: ErrorPolicy | None = None
) -> Callable[[F], F]:
    """Turn ``hooks`` into a decorator for FastAPI, Starlette, Flask and Django routes, sync or async; a refusal
    is rendered under ``errors`` (the part's :class:`~backend_guard.errors.ErrorPolicy`; default: problem+json).

    Example::

        def limit(self, rate: str) -> Callable[[F], F]:
            return guard_route(_LimitHooks(self, rate), client_ip=self.client_ip)

        @app.get("/items/{id}")
        @limiter.limit("5/minute")
        async def item(id: int): ...
    """

    def decorate(func: F) -> F:
        sig, req_name, resp_name, own_params = route_signature(func, hooks.fastapi_parameters() if hooks else [])
        prepare = _Prepare(func, client_ip, req_name, resp_name, own_params, errors)
        if inspect.iscoroutinefunction(func):
            wrapper = _async_wrapper(func, hooks, prepare)
        else:
            wrapper = _sync_wrapper(func, hooks, prepare)
        if sig is not None:
            wrapper.__signature__ = sig
        setattr(wrapper, _GUARDED, True)
        declare_problem_statuses(wrapper, hooks.statuses)  # with the route's own (functools.wraps copied them)
        return cast(F, wrapper)

    return decorate


def fastapi_dependency(hooks: RouteHooks, *, client_ip: ClientIP | None = None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency running ``hooks.abefore``: ``Depends(fastapi_dependency(hooks))``.

    A refusal is raised as a Starlette ``HTTPException`` carrying the GuardError's status and headers (and the
    GuardError itself as ``.guard_error``, which backend_guard's exception handlers render as problem+json).

    Example::

        @app.get("/search", dependencies=[Depends(limiter.dependency("10/second"))])
        async def search(q: str): ...
    """
    # HTTPConnection, not Request: FastAPI fills it on WebSocket routes too. A refusal on a WebSocket route is the
    # same HTTPException: Starlette sends the response it renders as the handshake's denial response.
    Request, Response = starlette_classes()  # noqa: N806  (ImportError without Starlette, as FastAPI needs it)
    inline = hooks.runs_inline()

    async def dependency(request: Any, response: Any, **_declared: Any) -> None:
        endpoint = request.scope.get("endpoint")  # the route function Starlette's router picked
        call = RouteCall(request=request, endpoint=endpoint, adapter=STARLETTE, client_ip=client_ip)
        try:
            if inline:
                hooks.before(call)
            else:
                await hooks.abefore(call)
        except GuardError as exc:
            raise refusal_exception(exc, call.response_headers) from None
        if call.raw_headers is not None:
            STARLETTE.set_raw_headers(response, call.raw_headers)
        for k, v in call.response_headers:
            response.headers[k] = v

    # This module uses postponed annotations; FastAPI resolves them in the function's globals, where the
    # Request/Response found at run time are not, so give it the real classes (and the hooks' own parameters,
    # which only shape the OpenAPI: their values land in ``_declared`` and are ignored).
    dependency.__annotations__ = {"request": Request, "response": Response, "return": None}
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter("response", keyword, annotation=Response),
            *hooks.fastapi_parameters(),
        ],
        return_annotation=None,
    )
    declare_problem_statuses(dependency, hooks.statuses)
    return dependency
