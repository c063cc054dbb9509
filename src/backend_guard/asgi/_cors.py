"""Pure ASGI CORS middleware: reads the request headers, asks the CORSPolicy, writes headers back.

All decisions live in :mod:`backend_guard.cors`; this shell only translates. Every response of a covered path
gets ``Vary`` merged (allowed, refused or without ``Origin``, including the app's 4xx/5xx); preflights are
answered here and never reach the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .. import events
from .._cache import BoundedCache
from .._check import check_instance, optional
from .._http import ASGIApp, Receive, Scope, Send, asgi_problem, merge_vary, route_path
from .._layer import Answer
from .._shell_headers import with_cors
from ..cors import STATE_KEY, CORSPolicy
from ..cors._policy import actual_refused, cors_policies
from ..errors import ErrorPolicy
from ._layer_shell import LayerMiddleware

if TYPE_CHECKING:
    from typing import TypedDict

    from typing_extensions import Unpack

    class _CORSPolicyOptions(TypedDict, total=False):
        """CORSPolicy's arguments as keywords: named, so Starlette's ``_MiddlewareFactory`` type-checks."""

        allow_origins: Sequence[str]
        allow_origin_patterns: Sequence[str]
        allow_methods: Sequence[str]
        allow_headers: Sequence[str]
        expose_headers: Sequence[str]
        allow_credentials: bool
        max_age: int
        allow_private_network: bool
        allow_origin_regex: str | None
        paths: Sequence[str] | None
        preflight_status: int


__all__ = ["CORSMiddleware"]

_INVALID = b"\x00"  # stands for "several Origin headers": never parses, so never allowed


_VARY_ORIGIN = (b"vary", b"Origin")
_Pairs = tuple[tuple[bytes, bytes], ...]
#: Bounds of the cache of CORS answers by Origin: up to 256 origins of 512 characters.
_SUFFIXES = 256
_SUFFIXES_BYTES = 1 << 20


def _actual(
    policy: CORSPolicy, scope: Scope, origin: bytes | None, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """An actual (non-preflight) response's headers with the CORS answer merged in (a route override wins)."""
    state = scope.get("state")
    if state:
        override = state.get(STATE_KEY)
        if isinstance(override, CORSPolicy):
            policy = override
    raw = policy.actual_raw(origin)
    if not raw and origin is not None and events.listening("cors"):
        _refused(scope, origin)
    return with_cors(headers, raw, _VARY_ORIGIN, b"access-control-")


_NOTED = "backend_guard.cors_refused"  # set in the scope once the refusal's event is published


def _refused(scope: Scope, origin: bytes) -> None:
    """An actual request from a refused origin, while a callback listens: ``cors.refused``, once per request (a
    response's steps may ask the CORS answer twice)."""
    if _NOTED not in scope:
        scope[_NOTED] = True
        host = fetch_site = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"sec-fetch-site":
                fetch_site = value
        actual_refused(origin, host, fetch_site)


def _preflight_asks(scope: Scope) -> tuple[bytes | None, bool]:
    """A preflight's requested headers (the ``Access-Control-Request-Headers`` joined) and whether it asks
    for private network access."""
    acrh: list[bytes] = []
    pna = False
    for name, value in scope["headers"]:
        if name == b"access-control-request-headers":
            acrh.append(value)
        elif name == b"access-control-request-private-network":
            pna = value.strip().lower() == b"true"
    return b",".join(acrh) or None, pna


class CORSMiddleware(LayerMiddleware):
    """Pure ASGI middleware applying a :class:`~backend_guard.CORSPolicy` (answers preflights itself).

    ``policy`` may also be a list of policies with ``paths``: the first covering the path decides (this is how a
    route gets its own preflight rules). A per-route override for actual responses is read from
    ``scope["state"]["backend_guard.cors"]`` (set by the route decorator) when the response starts.
    Keyword arguments build a policy instead: ``CORSMiddleware(app, allow_origins=[...])``. ``errors``: the
    :class:`~backend_guard.errors.ErrorPolicy` a refused preflight's 403 is rendered with (default: problem
    documents; a stack built from settings passes its own).

    Example::

        app = CORSMiddleware(app, policy=bg.CORSPolicy(allow_origins=["https://app.example.com"]))
        # Starlette / FastAPI:
        app.add_middleware(CORSMiddleware, policy=bg.CORSPolicy(allow_origins=["https://app.example.com"]))
    """

    touches = frozenset({b"vary"})
    touched_prefixes = (b"access-control-",)

    def __init__(
        self,
        app: ASGIApp,
        policy: CORSPolicy | Sequence[CORSPolicy] | None = None,
        *,
        errors: ErrorPolicy | None = None,
        **policy_kwargs: Unpack[_CORSPolicyOptions],
    ) -> None:
        self.app = app
        self.policies = cors_policies(policy, policy_kwargs)
        #: The policy a refused preflight's 403 is rendered with (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)
        self._single = self.policies[0] if len(self.policies) == 1 and self.policies[0].paths is None else None
        # What appended returns under the single policy, by Origin (which comes from clients: bounded).
        self._suffixes: BoundedCache[bytes | None, _Pairs] = BoundedCache(
            "cors.appended", max_entries=_SUFFIXES, max_bytes=_SUFFIXES_BYTES
        )

    def _policy_for(self, path: str) -> CORSPolicy | None:
        if self._single is not None:
            return self._single
        for p in self.policies:
            if p.applies_to(path):
                return p
        return None

    def on_request(self, scope: Scope) -> Answer[ASGIApp] | tuple[CORSPolicy, Scope, bytes | None] | None:
        """A preflight is answered here; an actual request's context: (the policy, the scope, its Origin)."""
        policy = self._single or self._policy_for(route_path(scope))
        if policy is None:
            return None
        if scope["method"] == "OPTIONS":
            return self._options(policy, scope)
        origin: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = _INVALID if origin is not None else value
        return policy, scope, origin

    def _options(self, policy: CORSPolicy, scope: Scope) -> Answer[ASGIApp] | tuple[CORSPolicy, Scope, bytes | None]:
        """An OPTIONS request: a preflight (with an Origin and ``Access-Control-Request-Method``) is answered
        here; any other is an actual request."""
        origin: bytes | None = None
        acrm: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = _INVALID if origin is not None else value
            elif name == b"access-control-request-method":
                acrm = value
        if origin is not None and acrm is not None:
            return Answer(self._preflight_app(policy, origin, acrm))
        return policy, scope, origin

    def on_response_start(
        self,
        context: tuple[CORSPolicy, Scope, bytes | None],
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with ``Vary: Origin`` and the CORS answer merged in."""
        policy, scope, origin = context
        return _actual(policy, scope, origin, headers)

    def appended(
        self,
        context: tuple[CORSPolicy, Scope, bytes | None],
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
    ) -> Sequence[tuple[bytes, bytes]] | None:
        """``Vary: Origin`` and the CORS answer; None under a route's own CORS policy."""
        policy, scope, origin = context
        state = scope.get("state")
        if state and STATE_KEY in state:
            return None
        found: _Pairs | None
        if policy is not self._single:
            found = (_VARY_ORIGIN, *policy.actual_raw(origin))
        else:
            cached = self._suffixes.get  # read first: CPython 3.11 does not specialise a call through the slot
            found = cached(origin)
            if found is None:
                found = (_VARY_ORIGIN, *policy.actual_raw(origin))
                self._suffixes.put(origin, found)
        if len(found) == 1 and origin is not None and events.listening("cors"):  # Vary alone: a refused origin
            _refused(scope, origin)
        return found

    def _preflight_app(self, policy: CORSPolicy, origin: bytes, acrm: bytes) -> ASGIApp:
        async def preflight(scope: Scope, receive: Receive, send: Send) -> None:
            await self._preflight(policy, scope, send, origin, acrm)

        return preflight

    async def _preflight(self, policy: CORSPolicy, scope: Scope, send: Send, origin: bytes, acrm: bytes) -> None:
        acrh, pna = _preflight_asks(scope)
        allowed, raw, _reason = policy.preflight_raw(origin, acrm, acrh, pna)
        vary = merge_vary(None, policy.preflight_vary())
        if not allowed:
            await asgi_problem(
                send, 403, scope=scope, headers=[("Vary", vary)], detail="CORS preflight refused.", policy=self.errors
            )
            return
        headers = [*raw, (b"vary", vary.encode("latin-1"))]
        if policy.preflight_status == 200:
            headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": policy.preflight_status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
