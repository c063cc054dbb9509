"""Pure ASGI CORS middleware: reads the request headers, asks the CORSPolicy, writes headers back.

All decisions live in :mod:`backend_guard.cors`; this shell only translates. Every response of a covered path
gets ``Vary`` merged (allowed, refused or without ``Origin``, including the app's 4xx/5xx); preflights are
answered here and never reach the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._http import ASGIApp, Message, Receive, Scope, Send, asgi_problem, merge_vary
from ..cors import STATE_KEY, CORSPolicy
from ..exceptions import ConfigurationError

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


def _policies(policy: CORSPolicy | Sequence[CORSPolicy] | None, kwargs: Any) -> tuple[CORSPolicy, ...]:
    if policy is None:
        if not kwargs:
            raise ConfigurationError("CORSMiddleware needs policy=CORSPolicy(...) (or CORSPolicy keyword arguments).")
        return (CORSPolicy(**kwargs),)
    if kwargs:
        raise ConfigurationError("CORSMiddleware takes either policy= or CORSPolicy keyword arguments, not both.")
    if not isinstance(policy, (CORSPolicy, list, tuple)):
        raise ConfigurationError(
            f"CORSMiddleware policy must be a CORSPolicy or a list of them, not {type(policy).__name__}."
        )
    policies = (policy,) if isinstance(policy, CORSPolicy) else tuple(policy)
    if not policies or not all(isinstance(p, CORSPolicy) for p in policies):
        raise ConfigurationError("CORSMiddleware policy must be a CORSPolicy or a non-empty list of them.")
    return policies


_VARY_ORIGIN = (b"vary", b"Origin")


def _add_headers(
    headers: Iterable[tuple[bytes, bytes]], extra: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """A new header list: ``Vary: Origin`` merged (one Vary left) and ``extra`` added, dropping the app's own
    ``Access-Control-*`` headers when ``extra`` is not empty (so a response never carries two). The app's list
    is never changed in place (it may be a shared constant)."""
    for name, _ in headers:
        lower = name.lower()
        if lower == b"vary" or (extra and lower.startswith(b"access-control-")):
            break
    else:  # the common case: nothing to merge
        return [*headers, _VARY_ORIGIN, *extra]
    existing: list[str] = []
    keep: list[tuple[bytes, bytes]] = []
    for item in headers:
        lower = item[0].lower()
        if lower == b"vary":
            existing.append(item[1].decode("latin-1"))
        elif not (extra and lower.startswith(b"access-control-")):
            keep.append(item)
    keep.append((b"vary", merge_vary(", ".join(existing) if existing else None, _ORIGIN).encode("latin-1")))
    keep.extend(extra)
    return keep


_ORIGIN = ("Origin",)


def _actual(
    policy: CORSPolicy, scope: Scope, origin: bytes | None, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """An actual (non-preflight) response's headers with the CORS answer merged in (a route override wins)."""
    state = scope.get("state")
    if state:
        override = state.get(STATE_KEY)
        if isinstance(override, CORSPolicy):
            policy = override
    return _add_headers(headers, policy.actual_raw(origin))


class CORSMiddleware:
    """Pure ASGI middleware applying a :class:`~backend_guard.CORSPolicy` (answers preflights itself).

    ``policy`` may also be a list of policies with ``paths``: the first covering the path decides (this is how a
    route gets its own preflight rules). A per-route override for actual responses is read from
    ``scope["state"]["backend_guard.cors"]`` (set by the route decorator) when the response starts.
    Keyword arguments build a policy instead: ``CORSMiddleware(app, allow_origins=[...])``.

    Example::

        app = CORSMiddleware(app, policy=bg.CORSPolicy(allow_origins=["https://app.example.com"]))
        # Starlette / FastAPI:
        app.add_middleware(CORSMiddleware, policy=bg.CORSPolicy(allow_origins=["https://app.example.com"]))
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: CORSPolicy | Sequence[CORSPolicy] | None = None,
        **policy_kwargs: Unpack[_CORSPolicyOptions],
    ) -> None:
        self.app = app
        self.policies = _policies(policy, policy_kwargs)
        self._single = self.policies[0] if len(self.policies) == 1 and self.policies[0].paths is None else None

    def _policy_for(self, path: str) -> CORSPolicy | None:
        if self._single is not None:
            return self._single
        for p in self.policies:
            if p.applies_to(path):
                return p
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self._single or self._policy_for(scope["path"])
        if policy is None:
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        acrm: bytes | None = None
        is_options = scope["method"] == "OPTIONS"
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = _INVALID if origin is not None else value
            elif is_options and name == b"access-control-request-method":
                acrm = value
        if is_options and origin is not None and acrm is not None:
            await self._preflight(policy, scope, send, origin, acrm)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _actual(policy, scope, origin, message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, policy: CORSPolicy, scope: Scope, send: Send, origin: bytes, acrm: bytes) -> None:
        acrh: list[bytes] = []
        pna = False
        for name, value in scope["headers"]:
            if name == b"access-control-request-headers":
                acrh.append(value)
            elif name == b"access-control-request-private-network":
                pna = value.strip().lower() == b"true"
        allowed, raw, _reason = policy.preflight_raw(origin, acrm, b",".join(acrh) or None, pna)
        vary = merge_vary(None, policy.preflight_vary())
        if not allowed:
            await asgi_problem(send, 403, scope=scope, headers=[("Vary", vary)], detail="CORS preflight refused.")
            return
        headers = [*raw, (b"vary", vary.encode("latin-1"))]
        if policy.preflight_status == 200:
            headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": policy.preflight_status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
