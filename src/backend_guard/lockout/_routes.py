"""Login-route integration of :class:`~backend_guard.lockout.Lockout`: one decorator for the four frameworks
and a FastAPI dependency, both built on ``_routes`` (no framework detection of their own).

The decorator reads the account from the request (a form field or a JSON member), reserves an attempt before
the route runs, and settles it from what the route reports: ``login_attempt.succeeded()`` (offered to the route
as ``request.state.login_attempt``, ``flask.g.login_attempt`` or Django's ``request.login_attempt``), Django's
``user_logged_in`` / ``user_login_failed`` signals, or a status the application named in
``success_statuses``. Anything not reported is a failure.

The account name must be one the route cannot read differently: a request whose body the decorator cannot read
one definite name from is refused before the route runs (413 too large, 415 not JSON or a form, 400 no single
string name), so no body reaches the password check uncounted. The body is read through each framework's own
cached accessors, so the route reads the very same bytes and form.
"""

from __future__ import annotations

import codecs
import functools
import json
import sys
from collections.abc import AsyncIterator, Callable, Container
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl

from .._adapter import FrameworkAdapter
from .._media import media_type
from .._routes import RouteCall, RouteHooks, declare_problem_statuses, guard_route, status_of_exception
from ..clientip import ClientIP
from ..exceptions import GuardError
from ..integrations._adapter_starlette import ADAPTER as STARLETTE
from ..integrations._adapter_starlette import refusal_exception, starlette_classes
from ..request import view_from_request
from ._attempt import normalize_identifier

if TYPE_CHECKING:
    from ..request import RequestView
    from . import Lockout
    from ._attempt import Attempt

__all__ = [
    "LoginRequestRefused",
    "lockout_dependency",
    "login_body_kind",
    "login_statuses",
    "name_from_form",
    "name_from_json",
    "protect_login",
    "refuse_json_labelled_form",
    "unframed_body_kind",
]

F = TypeVar("F", bound=Callable[..., Any])
AccountGetter = Callable[[RouteCall], str | None]
BodyKind = Literal["none", "unframed", "json", "urlencoded", "multipart"]

#: The largest login body the decorator reads; a larger one is refused with 413 before the route runs.
MAX_LOGIN_BODY = 1 << 20
#: The name under which the route finds its reserved attempt (request.state / flask.g / Django request).
ATTEMPT_ATTR = "login_attempt"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The headers :func:`login_body_kind` reads.
_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")


class LoginRequestRefused(GuardError):
    """A login request the lockout cannot read one definite account name from (400); never reaches the route."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad Request"


class _TooLarge(LoginRequestRefused):
    status: ClassVar[int] = 413
    code: ClassVar[str] = "request-entity-too-large"
    title: ClassVar[str] = "Request Entity Too Large"


class _Unsupported(LoginRequestRefused):
    status: ClassVar[int] = 415
    code: ClassVar[str] = "unsupported-media-type"
    title: ClassVar[str] = "Unsupported Media Type"


def _no_name(field: str) -> LoginRequestRefused:
    return LoginRequestRefused(f"The login request must carry exactly one non-empty {field!r} string.")


def _too_large() -> LoginRequestRefused:
    return _TooLarge(f"A login request body is limited to {MAX_LOGIN_BODY} bytes.")


def _unsupported() -> LoginRequestRefused:
    return _Unsupported("A login request body must be JSON, a URL-encoded form or a multipart form.")


# -- the decision, on plain values ---------------------------------------------------------------------------


def login_body_kind(view: RequestView, field: str) -> BodyKind:
    """How to read the account name of this login request, or a refusal, from its method and headers alone.

    ``"unframed"``: a GET/HEAD/OPTIONS declaring no body or an empty one (no Transfer-Encoding, no Content-Length
    or ``0``), a login page unless a body arrives anyway (an HTTP/2 or HTTP/3 request need not declare its
    body, and a declared ``0`` is the client's word, not the server's): the caller reads the body and asks
    :func:`unframed_body_kind` (``"none"``: empty, a page, not an attempt). A name in the query string is
    refused (Flask's ``request.values`` and hand-written views read it there), as is a declared length over
    :data:`MAX_LOGIN_BODY` (413, nothing read), a repeated Content-Type (400: frameworks read different ones)
    and any media type other than JSON (or none) and the two forms (415: a route might still parse such a body
    as JSON, and the lockout would not have counted it).
    """
    query = view.query
    if query and any(key == field for key, _ in parse_qsl(query, keep_blank_values=True)):
        raise LoginRequestRefused(f"Send {field!r} in the request body, not in the URL.")
    fields = view.header_map(_BODY_HEADERS)  # one pass over the headers
    lengths = fields.get("content-length")
    length = ", ".join(lengths) if lengths else None
    if view.method.upper() in _SAFE_METHODS and "transfer-encoding" not in fields and length in (None, "0"):
        return "unframed"
    _check_length(length)
    return _content_kind(fields.get("content-type", []))


def unframed_body_kind(view: RequestView, body: bytes | None) -> BodyKind:
    """The kind of an ``"unframed"`` request (see :func:`login_body_kind`) once its body is read: ``"none"`` (not
    an attempt) when the body is empty, else read by its Content-Type as any login body is (``body`` None: the
    stream was consumed by a form parser, so there was a body).

    Example::

        unframed_body_kind(view, b"")                      # "none": a login page
        unframed_body_kind(view, b'{"username": "alice"}')  # "json": an attempt, though sent with GET
    """
    if body == b"":
        return "none"
    return _content_kind(view.header_all("content-type"))


def _content_kind(types: list[str]) -> BodyKind:
    """The body kind of a request's Content-Type fields (none: JSON), or a refusal (400 two fields, 415 another
    media type)."""
    if len(types) > 1:  # Starlette parses a form under the first; joined, "form, x+json" reads as JSON
        raise LoginRequestRefused("A login request must carry one Content-Type header.")
    return _media_kind(types[0] if types else None)


def _check_length(length: str | None) -> None:
    """Refuse a declared Content-Length that is not a number (400) or is over :data:`MAX_LOGIN_BODY` (413).

    A number is ASCII digits only (RFC 9110 ``1*DIGIT``): ``int()`` alone would also take ``-1``, `` 5``, ``+7``,
    ``1_000`` and other scripts' digits, which a server in front may read differently.
    """
    if length is not None:
        if not (length.isascii() and length.isdigit()):
            raise LoginRequestRefused("The Content-Length header is not a number.")
        if int(length) > MAX_LOGIN_BODY:
            raise _too_large()


def _media_kind(content_type: str | None) -> BodyKind:
    """The body kind of a Content-Type: JSON (or none given), one of the two forms, or refused (415)."""
    media = media_type(content_type)
    if not media or media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    form = _FORMS.get(media)
    if form is None:
        raise _unsupported()
    return form


_FORMS: dict[str, BodyKind] = {"application/x-www-form-urlencoded": "urlencoded", "multipart/form-data": "multipart"}


def _definite(value: Any, field: str) -> str:
    """``value`` if it is a string naming an account (not empty once normalised, encodable), else refused."""
    if not isinstance(value, str):
        raise _no_name(field)
    try:
        value.encode("utf-8")
        empty = not normalize_identifier(value)
    except (UnicodeError, ValueError):  # a lone surrogate from a JSON escape
        raise _no_name(field) from None
    if empty:
        raise _no_name(field)
    return value


def _cannot_repeat(body: bytes | str, field: str) -> bool:
    """True when no object in ``body`` can hold ``field`` twice: text, or bytes ``json.loads`` reads as UTF-8
    without a byte order mark, with no escape, where the quoted name appears at most once (a member name with no
    escape is its own text, so a repeated one appears twice).

    The bytes test is the standard library's own (``json.detect_encoding``), never a looser one (no NUL anywhere,
    a mark allowed): an application's JSON provider may read bodies the standard parser refuses (a raw NUL under
    ``strict=False``, text after a mark), and such a body meets :func:`name_from_json` in :func:`_json_name`.
    """
    quoted = _quoted(field)
    if quoted is None:
        return False
    if isinstance(body, str):
        return "\\" not in body and body.count(quoted[0]) <= 1
    return b"\\" not in body and body.count(quoted[1]) <= 1 and json.detect_encoding(body) == "utf-8"


@functools.lru_cache(maxsize=64)
def _quoted(field: str) -> tuple[str, bytes] | None:
    """A member name ``field`` (from code) quoted as text and as UTF-8 JSON; None when it is not ASCII."""
    return (f'"{field}"', f'"{field}"'.encode("ascii")) if field.isascii() else None


def _parse_json(body: bytes | str, field: str) -> Any:
    # json.loads on bytes (UTF-8/16/32 detected) is what Starlette, Flask and json.loads(request.body) do.
    if _cannot_repeat(body, field):  # the common body: parsed without a Python hook per object
        # Bytes json.loads reads as UTF-8 (see _cannot_repeat): decoded as json.loads decodes them.
        return json.loads(body if isinstance(body, str) else body.decode("utf-8", "surrogatepass"))

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if sum(1 for key, _ in items if key == field) > 1:  # parsers disagree on which of two values wins
            raise ValueError("repeated account member")
        return dict(items)

    return json.loads(body, object_pairs_hook=pairs)


def _json_member(body: bytes | str, field: str) -> str:
    try:
        data = _parse_json(body, field)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        raise _no_name(field) from None
    return _member_of(data, field)


def _member_of(data: Any, field: str) -> str:
    """The name in a parsed JSON body: a top-level object's string member ``field``."""
    if not isinstance(data, dict):
        raise _no_name(field)
    return _definite(data.get(field), field)


def name_from_json(body: bytes, field: str, encoding: str | None = None) -> str:
    """The account name of a JSON login body: a top-level object with exactly one string member ``field``.

    Anything else (too large, not JSON, not UTF-8/16/32, too deeply nested, another type, the member twice,
    an empty name) raises :class:`LoginRequestRefused`. ``encoding`` is a charset the route may decode the
    body with before parsing it (Django's ``request.encoding``, from the Content-Type, is what Django REST
    framework's JSONParser uses): the body must then name the same account read that way too (a UTF-7
    ``"+AGE-lice"`` is ``"alice"`` to such a route), or it is refused.

    Example::

        name_from_json(b'{"username": "alice", "password": "..."}', "username")  # "alice"
    """
    if len(body) > MAX_LOGIN_BODY:
        raise _too_large()
    name = _json_member(body, field)
    if encoding is not None:
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"  # read as UTF-8, the body names `name` or nothing
            text = None if utf8 else body.decode(encoding)
        except (LookupError, UnicodeError):  # LookupError: not a text encoding (base64, rot13)
            raise _no_name(field) from None
        if text is not None and _json_member(text, field) != name:
            raise _no_name(field)
    return name


def _is_json(body: bytes | str) -> bool:
    """True for JSON, and for a body nested too deep to tell: the route parses a few frames higher up the stack
    than this check, so its json.loads may still read a body that hits the recursion limit here."""
    try:
        json.loads(body)
    except ValueError:
        return False
    except RecursionError:
        return True
    return True


def _is_json_text(body: bytes, encoding: str) -> bool:
    """True when ``body`` decoded with ``encoding`` (a charset other than UTF-8) is JSON."""
    try:
        return codecs.lookup(encoding).name != "utf-8" and _is_json(body.decode(encoding))
    except (LookupError, UnicodeError):  # a route cannot decode it either
        return False


def refuse_json_labelled_form(body: bytes, encoding: str | None = None) -> None:
    """A form body (URL-encoded or multipart) that is JSON is refused (415): a route that ignores the label reads
    another name (Django's multipart parser finds a boundary anywhere, so a JSON string can open a part naming
    another account). ``encoding``: a charset the route may decode the body with first (as in
    :func:`name_from_json`); JSON that way is refused too.

    Example::

        refuse_json_labelled_form(b"username=alice&password=x")   # a form: nothing raised
    """
    if len(body) > MAX_LOGIN_BODY:
        raise _too_large()
    if _is_json(body) or (encoding is not None and _is_json_text(body, encoding)):
        raise _Unsupported("A login body labelled as a form must not be JSON: send JSON as application/json.")


def name_from_form(values: list[Any], field: str) -> str:
    """The account name of a form: exactly one value of ``field``, a non-empty string (not a file)."""
    if len(values) != 1:
        raise _no_name(field)
    return _definite(values[0], field)


# -- reading the body through the framework's adapter (its own cached accessors) ----------------------------


def _refusal_of(adapter: FrameworkAdapter, exc: BaseException) -> LoginRequestRefused:
    """A framework's error while parsing the body, as a refusal (413 for its size limits, else 400)."""
    if isinstance(exc, LoginRequestRefused):
        return exc
    if status_of_exception(exc) == 413 or adapter.body_too_large(exc):
        return _too_large()
    return LoginRequestRefused("The login request body could not be read.")


def _from_body(body: bytes | None, kind: BodyKind, field: str, adapter: FrameworkAdapter, request: Any) -> str | None:
    """The name of a JSON body, or None when it is in the form (a form body that is JSON is refused; its raw bytes
    are None only where no one can read them any more: the form was parsed from the stream)."""
    if kind == "json":
        if body is None:  # the stream was consumed by a form parser: the JSON cannot be read
            raise LoginRequestRefused("The login request body could not be read.")
        return _json_name(body, field, adapter, request)
    if body is not None:
        refuse_json_labelled_form(body, adapter.body_charset(request))
    return None


def _json_name(body: bytes, field: str, adapter: FrameworkAdapter, request: Any) -> str:
    """The name of a JSON body; where the framework parses JSON for its routes (Flask's ``get_json()``), the name
    in that parse, which the route then gets too. A body where the member might repeat (an escape, the quoted name
    twice) must also pass :func:`name_from_json`, which refuses a repeat (parsers differ on which value wins); the
    name it reads is not compared: an application's provider may read the member differently (that is the name its
    route checks), and a body with an escaped password would be refused for it."""
    if len(body) > MAX_LOGIN_BODY:
        raise _too_large()
    charset = adapter.body_charset(request)
    parsed = adapter.parsed_json(request) if charset is None else None  # a charset: both readings checked
    if parsed is None:
        return _json_member(body, field) if charset is None else name_from_json(body, field, charset)
    name = _member_of(parsed[0], field)
    if not _cannot_repeat(body, field):
        name_from_json(body, field, charset)  # for its refusal of a repeated member only
    return name


def _body_of_unframed(adapter: FrameworkAdapter, request: Any) -> bytes | None:
    """The body of a request that declared none (``"unframed"``), read in a sync route: the same cached bytes the
    route reads (b"" when there is none, as always on HTTP/1.1, where such a request cannot carry one)."""
    try:
        return adapter.read_body(request, MAX_LOGIN_BODY)
    except Exception as exc:  # a client gone: never a 500, never uncounted
        raise _refusal_of(adapter, exc) from None


async def _abody_of_unframed(adapter: FrameworkAdapter, request: Any) -> bytes | None:
    """:func:`_body_of_unframed` in an async route."""
    try:
        return await adapter.aread_body(request, MAX_LOGIN_BODY)
    except Exception as exc:
        raise _refusal_of(adapter, exc) from None


def _read_name(adapter: FrameworkAdapter, request: Any, kind: BodyKind, field: str) -> str:
    """The account name, read in a sync route (the raw body first, also for a form: the route may read it)."""
    try:
        name = _from_body(adapter.read_body(request, MAX_LOGIN_BODY), kind, field, adapter, request)
        if name is not None:
            return name
        return name_from_form(adapter.form_values(request, field, MAX_LOGIN_BODY), field)
    except Exception as exc:  # a malformed form, a client gone: never a 500, never uncounted
        raise _refusal_of(adapter, exc) from None


async def _aread_name(adapter: FrameworkAdapter, request: Any, kind: BodyKind, field: str) -> str:
    """:func:`_read_name` in an async route."""
    try:
        name = _from_body(await adapter.aread_body(request, MAX_LOGIN_BODY), kind, field, adapter, request)
        if name is not None:
            return name
        return name_from_form(await adapter.aform_values(request, field, MAX_LOGIN_BODY), field)
    except Exception as exc:
        raise _refusal_of(adapter, exc) from None


def login_statuses(lock: Lockout, *, reads_body: bool = True) -> tuple[int, ...]:
    """The error statuses a login route guarded by ``lock`` can be answered with before it runs (for OpenAPI).

    400 (no single account name), 413 and 415 (a body too large or of another type; only when the name is read
    from the body), 429 for a locked account or 401 in ``generic`` mode (a locked account answers as a wrong
    password), 503 when ``on_storage_error="deny"``. Read from the lockout's settings when the route is
    decorated.

    Example::

        login_statuses(Lockout())   # (400, 413, 415, 429, 503)
    """
    out = {400, 401 if lock.generic else 429}
    if reads_body:
        out |= {413, 415}
    if lock.on_storage_error == "deny":
        out.add(503)
    return tuple(sorted(out))


class _LoginHooks(RouteHooks):
    def __init__(self, lock: Lockout, field: str, account: AccountGetter | None, success: Container[int]) -> None:
        self.lock = lock
        self.field = field
        self.account = account
        self.success = success
        self.statuses = login_statuses(lock, reads_body=account is None)

    def _custom(self, call: RouteCall) -> str:
        assert self.account is not None
        # A getter that finds no name refuses the request: it would otherwise run uncounted.
        return _definite(self.account(call), "account")

    def _name(self, call: RouteCall, adapter: FrameworkAdapter) -> str | None:
        if self.account is not None:
            return self._custom(call)
        kind = login_body_kind(call.view, self.field)
        if kind == "unframed":
            kind = unframed_body_kind(call.view, _body_of_unframed(adapter, call.request))
        return None if kind == "none" else _read_name(adapter, call.request, kind, self.field)

    def _offer(self, call: RouteCall, adapter: FrameworkAdapter, ctx: Any, attempt: Attempt) -> None:
        call.state["lockout_attempt"] = (ctx, attempt)
        adapter.set_attr(call.request, ATTEMPT_ATTR, attempt)
        adapter.watch_login(call.request, attempt)

    def before(self, call: RouteCall) -> None:
        adapter = call.adapter
        name = self._name(call, adapter)
        if name is None:
            return
        ctx = self.lock.attempt(name, call.client or None)
        self._offer(call, adapter, ctx, ctx.__enter__())

    async def abefore(self, call: RouteCall) -> None:
        adapter = call.adapter
        if self.account is not None:
            name = self._custom(call)
        else:  # _name's twin, in this coroutine (one coroutine fewer per login)
            kind = login_body_kind(call.view, self.field)
            if kind == "unframed":
                kind = unframed_body_kind(call.view, await _abody_of_unframed(adapter, call.request))
            if kind == "none":
                return
            name = await _aread_name(adapter, call.request, kind, self.field)
        actx = self.lock.aattempt(name, call.client or None)
        self._offer(call, adapter, actx, await actx.__aenter__())

    def _settle(self, call: RouteCall, status: int) -> Any:
        pair = call.state.pop("lockout_attempt", None)
        # A reported outcome wins; else only a status the application named counts as a success.
        if pair is not None and not pair[1].reported and status in self.success:
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
    success_statuses: Container[int] = (),
    client_ip: ClientIP | None = None,
) -> Callable[[F], F]:
    """Decorator for login routes (FastAPI, Starlette, Flask, Django; sync or async); see Lockout.protect."""
    return guard_route(_LoginHooks(lock, field, account, success_statuses), client_ip=client_ip, errors=lock.errors)


def lockout_dependency(
    lock: Lockout,
    *,
    field: str = "username",
    client_ip: ClientIP | None = None,
) -> Callable[..., AsyncIterator[Attempt]]:
    """FastAPI dependency yielding a reserved Attempt; see Lockout.dependency."""
    Request, _ = starlette_classes()  # noqa: N806  (ImportError without Starlette, as FastAPI needs it)

    async def dependency(request: Any) -> AsyncIterator[Attempt]:
        view = view_from_request(request, client_ip)
        try:
            kind = login_body_kind(view, field)
            if kind == "unframed":
                kind = unframed_body_kind(view, await _abody_of_unframed(STARLETTE, request))
            if kind == "none":  # a route guarded by this dependency always takes a login attempt
                raise _no_name(field)
            name = await _aread_name(STARLETTE, request, kind, field)
            ctx = lock.aattempt(name, view.client or None)
            attempt = await ctx.__aenter__()
        except GuardError as exc:
            raise refusal_exception(exc, []) from None
        request.state.login_attempt = attempt
        try:
            yield attempt
        finally:
            await ctx.__aexit__(*sys.exc_info())

    # The annotation must be the class itself: FastAPI resolves string annotations in this module's globals.
    dependency.__annotations__["request"] = Request
    declare_problem_statuses(dependency, login_statuses(lock))
    return dependency
