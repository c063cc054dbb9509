"""``Guard``: the whole ASGI stack in the documented order, from one settings object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._cache import BoundedCache
from .._check import check_instance, optional
from .._http import REQUEST_ID_KEY, ASGIApp, Receive, Scope, Send
from .._logging import request_id_var
from .._stack import StackParts
from ..config import GuardSettings
from ..cors import STATE_KEY as _CORS_KEY
from ..headers import NONCE_KEY as _NONCE_KEY
from ..headers import OVERRIDE_KEY as _SH_KEY
from ..ratelimit import _RL_FIELDS_ALL, merge_raw_fields
from . import _shells as shells
from ._cors import _INVALID, _VARY_ORIGIN, CORSMiddleware, _actual
from ._errors import ErrorEnvelopeMiddleware, _finishing
from ._headers import SecureHeadersMiddleware
from ._proxy import ProxyHeadersMiddleware
from ._ratelimit import RateLimitMiddleware
from ._request_id import RequestIdMiddleware, _stamp

if TYPE_CHECKING:
    from ..cors import CORSPolicy
    from ..storage import Store

#: Per request, for Guard._finish: (scope, its state, the CORS policy or None, the Origin, the request id).
_Context = tuple[Scope, dict[str, Any], "CORSPolicy | None", "bytes | None", bytes]
_Pairs = tuple[tuple[bytes, bytes], ...]

#: Bounds of Guard's caches: the suffixes (one per CORS answer and scheme; CORS answers follow the Origin, which
#: comes from clients) and the response header names known to need no merging (they come from the app).
_SUFFIXES = 256
_SUFFIXES_BYTES = 1 << 20  # keyed on the allowed origin's CORS headers: up to 256 origins of 512 characters
_CLEAN_NAMES = 256


class Guard:
    """Wrap an ASGI app in RequestId -> SecureHeaders -> CORS -> ErrorEnvelope -> RateLimit (outermost first).

    Each part can be switched off or configured in ``settings``; the compiled parts are on ``.parts``
    (``parts.limiter``, ``parts.store``, ``parts.lockout()``, ``parts.tokens()``...).

    Example::

        from backend_guard.asgi import Guard

        app = Guard(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
        # or, in Starlette/FastAPI:  app.add_middleware(Guard, settings=settings)

    The stack is the nested middlewares on ``.app`` (which serves websockets and CORS preflights). Any
    other HTTP request runs fused: Guard reads the request once, makes the rate limit decision itself and
    hands the app to the ErrorEnvelope with one function that adds every layer's response headers, so one
    coroutine layer and one ``send`` wrapper stand for five of each. The headers are computed by the same
    functions as nested and the responses are the same (``tests/test_guard_fused.py`` checks it); when the
    app's response holds no header a layer would merge, replace or drop, they are appended in one step.
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
        # The outer shells, found on the chain parts.wrap built (exact types only: nothing else is fused).
        node = self.app
        # With trusted proxies the client is resolved (and the scope rewritten) first, for every layer inside.
        self._proxy = node.client_ip if type(node) is ProxyHeadersMiddleware else None
        node = node.app if self._proxy is not None else node
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
        self._app: ASGIApp = self._rl.app if self._rl is not None else (rl if self._err is not None else node)
        self._name = self._rid._name if self._rid is not None else b""
        self._conflicts = self._fast_conflicts()
        # The fast path of _finish: response header names (as the app spelled them) already found to be none
        # of the conflicting ones, and the headers the layers append after the app's (Vary, the CORS answer,
        # the security headers) by (CORS answer, is it HTTPS?, kind of response), each built once.
        self._clean: set[bytes] = set()
        self._suffixes: BoundedCache[tuple[_Pairs | None, bool, int], _Pairs] = BoundedCache(
            "guard.suffixes", max_entries=_SUFFIXES, max_bytes=_SUFFIXES_BYTES
        )

    def _fast_conflicts(self) -> frozenset[bytes] | None:
        """Lower-case header names whose presence in the app's response leaves the fast path of ``finish``
        (every layer would then do more than append); ``access-control-*`` names too. None when the layers
        could touch each other's headers (a request-id header named like another layer's, a SecureHeaders
        policy removing ``Vary``...): then every response takes the nested chain's path."""
        names: set[bytes] = set(_RL_FIELDS_ALL) | {b"vary"}  # merged by ErrorEnvelope (rate limit) and CORS
        if self._sh is not None:
            policy = self._sh.policy
            touched = {n.encode("latin-1") for n in (*policy.header_names, *policy.removed)}
            if not touched.isdisjoint(names) or any(n.startswith(b"access-control-") for n in touched):
                return None
            names |= touched
        if self._rid is not None:
            if self._name in names or self._name.startswith(b"access-control-"):
                return None
            names.add(self._name)
        return frozenset(names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._proxy is not None:
            self._proxy.apply_scope(scope)
        rid_mw, cors_mw = self._rid, self._cors
        cors = None
        origin: bytes | None = None
        incoming: bytes | None = None
        if cors_mw is not None:
            cors = cors_mw._single or cors_mw._policy_for(scope["path"])
        name = self._name
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
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        value = b""
        token = None
        if rid_mw is not None:  # RequestIdMiddleware._begin, inlined
            rid = rid_mw.policy.choose(incoming)
            state[REQUEST_ID_KEY] = rid
            value = rid.encode("ascii")
            token = request_id_var.set(rid)
        ctx: _Context = (scope, state, cors, origin, value)
        try:
            err = self._err
            if err is None:
                await self._inner(scope, receive, _finishing(send, self._finish, ctx))
                return
            app = self._app
            extra: list[tuple[bytes, bytes]] | None = None
            rl = self._rl
            if rl is not None:
                try:
                    limiter = rl.limiter
                    plan = rl.plan.plan_for_scope(scope, limiter)
                    if plan is not None:
                        reply = limiter.run_plan(plan) if limiter.inline else await limiter.arun_plan(plan)
                        answer, extra = rl._outcome(plan, reply)
                        if answer is not None:
                            app = answer
                except Exception as exc:  # what the RateLimitMiddleware inside the envelope would have raised
                    app = _raiser(exc)
            await err._guard(app, scope, receive, send, extra, self._finish, ctx)
        finally:
            if token is not None:
                request_id_var.reset(token)

    def _finish(
        self,
        ctx: _Context,
        headers: Iterable[tuple[bytes, bytes]],
        extra: list[tuple[bytes, bytes]] | None,
        status: int,
    ) -> list[tuple[bytes, bytes]]:
        """A response start's headers with the rate limit fields (``extra``) and the outer three layers'
        headers merged in: what ErrorEnvelope, CORS, SecureHeaders and RequestId would send, nested."""
        scope, state, cors, origin, value = ctx
        if self._conflicts is not None and _SH_KEY not in state:
            # The common case, in one pass: the app set none of the names a layer merges, replaces or drops,
            # so each layer would only append its headers.
            clean = self._clean
            for k, _ in headers:
                if k not in clean and not self._learn(k):
                    break
            else:
                kind = self._sh.policy.kind_raw(status, headers) if self._sh is not None else 0
                suffix = self._suffix(scope, state, cors, origin, kind)
                if suffix is not None:
                    if self._rid is not None:
                        return (
                            [*headers, *extra, *suffix, (self._name, value)]
                            if extra
                            else [*headers, *suffix, (self._name, value)]
                        )
                    return [*headers, *extra, *suffix] if extra else [*headers, *suffix]
                out = [*headers, *extra] if extra else [*headers]
                if cors is not None:
                    out = _actual(cors, scope, origin, out)  # a route's own CORS policy (or a nonce...)
                if self._sh is not None:
                    out += self._sh._added(state, scope, kind)
                if self._rid is not None:
                    out.append((self._name, value))
                return out
        if extra is not None:
            headers = merge_raw_fields(headers, extra)
        if cors is not None:
            headers = _actual(cors, scope, origin, headers)
        if self._sh is not None:
            headers = self._sh._apply(state, scope, headers, status)
        if self._rid is not None:
            headers = _stamp(headers, self._name, value)
        return headers if isinstance(headers, list) else list(headers)

    def _learn(self, name: bytes) -> bool:
        """True when a response header named ``name`` leaves ``_finish`` on its fast path (remembered, bounded)."""
        conflicts = self._conflicts
        lower = name.lower()
        if conflicts is None or lower in conflicts or lower.startswith(b"access-control-"):
            return False
        if len(self._clean) < _CLEAN_NAMES:
            self._clean.add(name)
        return True

    def _suffix(
        self, scope: Scope, state: dict[str, Any], cors: CORSPolicy | None, origin: bytes | None, kind: int
    ) -> _Pairs | None:
        """What the CORS and SecureHeaders layers append to a response holding none of their names: ``Vary:
        Origin`` and the CORS answer for ``origin``, then the security headers of this ``kind`` of response (an
        HTML document's, a 304's or the others': ``SecureHeaders.kind_raw``); None when it depends on more than
        the CORS answer, the scheme and the kind of response (a route's own CORS or security policy, a CSP
        nonce, a path)."""
        cors_raw: _Pairs | None = None
        if cors is not None:
            current = scope.get("state")
            if current and _CORS_KEY in current:  # a route's own CORS policy
                return None
            cors_raw = cors.actual_raw(origin)
        sh = self._sh
        secure = False
        if sh is not None:
            plain = sh._plain
            if plain is None or sh.policy is not sh._plain_policy or state.get(_NONCE_KEY) is not None:
                return None
            secure = sh.policy.needs_scheme and sh._secure(scope)
        key = (cors_raw, secure, kind)
        found = self._suffixes.get(key)
        if found is None:
            added: _Pairs = sh._plain[2 * kind + secure] if sh is not None and sh._plain is not None else ()
            found = ((_VARY_ORIGIN, *cors_raw) if cors_raw is not None else ()) + added
            self._suffixes.put(key, found)
        return found


def _raiser(exc: Exception) -> ASGIApp:
    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return fail
