"""``Guard``: the whole ASGI stack in the documented order, from one settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._http import ASGIApp, Message, Receive, Scope, Send
from .._logging import request_id_var
from .._stack import StackParts
from ..config import GuardSettings
from ._cors import _INVALID, CORSMiddleware, _actual
from ._errors import ErrorEnvelopeMiddleware
from ._headers import SecureHeadersMiddleware
from ._ratelimit import RateLimitMiddleware
from ._request_id import RequestIdMiddleware, _stamp

if TYPE_CHECKING:
    from ..storage import Store


class Guard:
    """Wrap an ASGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Each part can be switched off or configured in ``settings``; the compiled parts are on ``.parts``
    (``parts.limiter``, ``parts.store``, ``parts.lockout()``, ``parts.tokens()``...).

    Example::

        from backend_guard.asgi import Guard

        app = Guard(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
        # or, in Starlette/FastAPI:  app.add_middleware(Guard, settings=settings)

    The stack is the nested middlewares on ``.app``; for HTTP requests that are not CORS preflights, the
    outer three (RequestId, SecureHeaders, CORS) run fused in one call and one ``send`` wrapper, with the same
    code and the same result as nested, to save two layers per request.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GuardSettings | None = None,
        *,
        store: Store | None = None,
        parts: StackParts | None = None,
    ) -> None:
        from .. import asgi as shells

        if parts is None:
            parts = StackParts.build(settings, store=store)
        self.parts = parts
        self.app: ASGIApp = parts.wrap(app, shells)
        self.settings = parts.settings
        # The outer shells, found on the chain parts.wrap built (exact types only: nothing else is fused).
        node = self.app
        self._rid = node if type(node) is RequestIdMiddleware else None
        node = node.app if self._rid is not None else node
        self._sh = node if type(node) is SecureHeadersMiddleware else None
        node = node.app if self._sh is not None else node
        self._cors = node if type(node) is CORSMiddleware else None
        self._inner: ASGIApp = node.app if self._cors is not None else node
        # ErrorEnvelope -> RateLimit fused too: the decision is made here, its fields merged by the envelope.
        node = self._inner
        self._err = node if type(node) is ErrorEnvelopeMiddleware else None
        rl: Any = node.app if self._err is not None else None
        self._rl: RateLimitMiddleware | None = rl if type(rl) is RateLimitMiddleware else None
        self._app: ASGIApp = self._rl.app if self._rl is not None else self._inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid_mw, sh, cors_mw = self._rid, self._sh, self._cors
        cors = None
        origin: bytes | None = None
        incoming: bytes | None = None
        if cors_mw is not None:
            cors = cors_mw._single or cors_mw._policy_for(scope["path"])
        name = rid_mw._name if rid_mw is not None else b""
        size = len(name)
        if cors is not None:
            # CORSMiddleware's reading of the request (a preflight is left to the nested chain), and the
            # incoming request id on the same pass.
            acrm: bytes | None = None
            is_options = scope["method"] == "OPTIONS"
            for k, v in scope["headers"]:
                if k == b"origin":
                    origin = _INVALID if origin is not None else v
                elif is_options and k == b"access-control-request-method":
                    acrm = v
                elif incoming is None and len(k) == size and (k == name or k.lower() == name):
                    incoming = v
            if is_options and origin is not None and acrm is not None:
                await self.app(scope, receive, send)
                return
        elif rid_mw is not None:
            for k, v in scope.get("headers", ()):
                if len(k) == size and (k == name or k.lower() == name):
                    incoming = v
                    break
        value = b""
        rid: str | None = None
        if rid_mw is not None:
            rid = rid_mw._begin(scope, incoming)
            value = rid.encode("ascii")
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            state = scope["state"] = {}

        async def guard_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if cors is not None:
                    headers = _actual(cors, scope, origin, headers)
                if sh is not None:
                    headers = sh._apply(state, scope, headers)
                if rid_mw is not None:
                    headers = _stamp(headers, name, value)
                message["headers"] = headers
            await send(message)

        token = request_id_var.set(rid) if rid is not None else None
        try:
            err, rl = self._err, self._rl
            if err is None or rl is None:
                await self._inner(scope, receive, guard_send)
                return
            app = self._app
            extra: list[tuple[bytes, bytes]] | None = None
            try:
                limiter = rl.limiter
                plan = rl.plan.plan_for_scope(scope, limiter)
                if plan is not None:
                    reply = limiter._run(plan) if limiter._inline else await limiter._arun(plan)
                    answer, extra = rl._outcome(plan, reply)
                    if answer is not None:
                        app = answer
            except Exception as exc:  # what the RateLimitMiddleware inside the envelope would have raised there
                app = _raiser(exc)
            await err._guard(app, scope, receive, guard_send, extra)
        finally:
            if token is not None:
                request_id_var.reset(token)


def _raiser(exc: Exception) -> ASGIApp:
    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return fail
