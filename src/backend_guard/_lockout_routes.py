"""Login-route integration of :class:`~backend_guard.lockout.Lockout`: one decorator for the four frameworks
and a FastAPI dependency, both built on ``_routes`` (no framework detection of their own).

The decorator reads the account from the request (a form field or a JSON member), reserves an attempt before
the route runs, and settles it from the response status: a success status takes the reservation back, any
other status leaves it counted as a failure. The request body is read through each framework's own cached
accessors, so the route can still read it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Container
from typing import TYPE_CHECKING, Any, TypeVar

from ._routes import RouteCall, RouteHooks, guard_route
from .clientip import ClientIP
from .exceptions import GuardError

if TYPE_CHECKING:
    from .lockout import Attempt, Lockout

__all__ = ["lockout_dependency", "protect_login"]

F = TypeVar("F", bound=Callable[..., Any])
AccountGetter = Callable[[RouteCall], str | None]
_MAX_JSON = 1 << 20


def _from_mapping(data: Any, field: str) -> str | None:
    if isinstance(data, dict):
        value = data.get(field)
        return value if isinstance(value, str) else None
    getter = getattr(data, "get", None)
    value = getter(field) if getter is not None else None
    return value if isinstance(value, str) else None


def _form_kind(content_type: str | None) -> str:
    """``"urlencoded"``, ``"multipart"`` or ``""`` (not a form: the body is tried as JSON)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        return "multipart"
    return "urlencoded" if ctype == "application/x-www-form-urlencoded" else ""


def _json_field(body: bytes, field: str) -> str | None:
    if not body or len(body) > _MAX_JSON:
        return None
    try:
        return _from_mapping(json.loads(body), field)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deeply nested JSON from a client
        return None


# Any body that is not a form is tried as JSON, whatever its Content-Type says (or when it has none): the
# route may well parse it as JSON anyway (FastAPI without strict_content_type does so for a body without
# Content-Type; Django views often json.loads(request.body)), and an account name the lockout did not see
# would be guessed at without ever counting against the account. A urlencoded form without the field falls
# back to the same for the same reason; a multipart body is only ever a form.


async def _starlette_field(request: Any, field: str) -> str | None:
    kind = _form_kind(request.headers.get("content-type"))
    body = b""
    if kind != "multipart":
        body = await request.body()  # cached: form() and the route read the same bytes again
        if not kind:
            return _json_field(body, field)
    try:
        form = await request.form()
    except Exception:  # a malformed form body: no account name (counted per address only)
        return None
    name = _from_mapping(form, field)
    return name if name is not None or kind == "multipart" else _json_field(body, field)


def _sync_field(call: RouteCall, field: str) -> str | None:
    request = call.request
    if call.framework == "flask":
        kind = _form_kind(request.headers.get("Content-Type"))
        # Cached before the form is parsed (werkzeug then parses the cached bytes): the view can read both.
        body = b"" if kind == "multipart" else request.get_data(cache=True)
        if kind:
            name = _from_mapping(request.form, field)
            if name is not None or kind == "multipart":
                return name
        return _json_field(body, field)
    if call.framework == "django":
        kind = _form_kind(request.META.get("CONTENT_TYPE"))
        if kind:
            name = _from_mapping(request.POST, field)
            if name is not None or kind == "multipart":
                return name
        return _json_field(request.body, field)
    # A sync Starlette/FastAPI route runs in a worker thread: borrow the event loop to read the cached body.
    import anyio.from_thread

    result: str | None = anyio.from_thread.run(_starlette_field, request, field)
    return result


class _LoginHooks(RouteHooks):
    def __init__(self, lock: Lockout, field: str, account: AccountGetter | None, success: Container[int]) -> None:
        self.lock = lock
        self.field = field
        self.account = account
        self.success = success

    def _name(self, call: RouteCall) -> str:
        if self.account is not None:
            return self.account(call) or ""
        return _sync_field(call, self.field) or ""

    async def _aname(self, call: RouteCall) -> str:
        if self.account is not None:
            return self.account(call) or ""
        if call.framework == "starlette":
            return await _starlette_field(call.request, self.field) or ""
        return _sync_field(call, self.field) or ""

    def before(self, call: RouteCall) -> None:
        ctx = self.lock.attempt(self._name(call), call.view.client or None)
        call.state["lockout_attempt"] = (ctx, ctx.__enter__())

    async def abefore(self, call: RouteCall) -> None:
        actx = self.lock.aattempt(await self._aname(call), call.view.client or None)
        call.state["lockout_attempt"] = (actx, await actx.__aenter__())

    def _settle(self, call: RouteCall, status: int) -> Any:
        pair = call.state.pop("lockout_attempt", None)
        if pair is not None and status in self.success:
            pair[1].succeeded()
        return pair

    def after(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        pair = self._settle(call, status)
        if pair is not None:
            pair[0].__exit__(None, None, None)
        return []

    async def aafter(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        pair = self._settle(call, status)
        if pair is not None:
            await pair[0].__aexit__(None, None, None)
        return []


def protect_login(
    lock: Lockout,
    *,
    field: str = "username",
    account: AccountGetter | None = None,
    success_statuses: Container[int] = range(200, 400),
    client_ip: ClientIP | None = None,
) -> Callable[[F], F]:
    """Decorator for login routes (FastAPI, Starlette, Flask, Django; sync or async); see Lockout.protect."""
    return guard_route(_LoginHooks(lock, field, account, success_statuses), client_ip=client_ip)


def lockout_dependency(
    lock: Lockout,
    *,
    field: str = "username",
    client_ip: ClientIP | None = None,
) -> Callable[..., AsyncIterator[Attempt]]:
    """FastAPI dependency yielding a reserved Attempt; see Lockout.dependency."""
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from .request import view_from_request

    async def dependency(request: Request) -> AsyncIterator[Attempt]:
        view = view_from_request(request, client_ip)
        name = await _starlette_field(request, field) or ""
        try:
            ctx = lock.aattempt(name, view.client or None)
            attempt = await ctx.__aenter__()
        except GuardError as exc:
            http_exc = HTTPException(exc.status, detail=exc.detail, headers=dict(exc.headers))
            http_exc.guard_error = exc  # type: ignore[attr-defined]
            raise http_exc from None
        try:
            yield attempt
        finally:
            await ctx.__aexit__(*sys.exc_info())

    # The annotation must be the class itself: FastAPI resolves string annotations in this module's globals.
    dependency.__annotations__["request"] = Request
    return dependency
