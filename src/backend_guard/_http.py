"""Small protocol helpers shared by the ASGI and WSGI shells (no policy lives here).

Conventions every shell follows:
- the request id is kept in ``scope["state"]["request_id"]`` (ASGI; Starlette's ``request.state``) and in
  ``environ["backend_guard.request_id"]`` (WSGI);
- per-request values for later middlewares (the CSP nonce, a per-route policy override) live in
  ``scope["state"]`` under ``backend_guard.*`` keys, and in the environ under the same keys.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ._media import media_type
from .errors import status_title
from .errors._policy import DEFAULT_POLICY

if TYPE_CHECKING:
    from .errors import ErrorPolicy

__all__ = [
    "BYTES_LIKE_ERRORS",
    "HTTP_TOKEN_RE",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "WSGIApp",
    "asgi_problem",
    "bytes_headers",
    "bytes_or_raise",
    "deny_handshake",
    "get_header",
    "media_type",
    "merge_vary",
    "request_id_from_environ",
    "request_id_from_scope",
    "route_path",
    "scope_state",
    "wsgi_problem",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: An RFC 9110 ``token`` (a method name, a header field name): match it with ``fullmatch``.
HTTP_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)

REQUEST_ID_KEY = "request_id"
ENVIRON_REQUEST_ID = "backend_guard.request_id"


def scope_state(scope: Scope) -> dict[str, Any]:
    """The scope's ``state`` dict (made when missing), shared with Starlette's ``request.state``."""
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


def route_path(scope: Mapping[str, Any]) -> str:
    """The path an ASGI app routes on: ``scope["path"]`` without the server's ``scope["root_path"]``.

    Path-scoped policies (rate limit rules, CORS policies, CSRF and HTTPS-redirect exemptions, no-store paths)
    match this path, as Starlette's router matches its routes: under ``uvicorn --root-path /api`` (or inside a
    ``Mount``) ``/api/ws`` is the app's ``/ws``. ``root_path`` comes from the server or the framework, never
    from the client. A path that does not start with ``root_path`` at a segment boundary is returned as it is
    (a limit is never skipped because a prefix is absent); the root itself is ``"/"``.

    Example::

        route_path({"path": "/api/ws", "root_path": "/api"})    # "/ws"
        route_path({"path": "/other", "root_path": "/api"})     # "/other"
    """
    path: str = scope.get("path") or "/"
    root = scope.get("root_path")
    if not root or not path.startswith(root):
        return path
    rest = path[len(root) :]
    if not rest:
        return "/"
    return rest if rest[0] == "/" else path


def request_id_from_scope(scope: Mapping[str, Any]) -> str | None:
    """The request id a RequestIdMiddleware put on the scope, if any."""
    state = scope.get("state")
    return state.get(REQUEST_ID_KEY) if state else None


def request_id_from_environ(environ: Mapping[str, Any]) -> str | None:
    """The request id a WSGI RequestIdMiddleware put on the environ, if any."""
    return environ.get(ENVIRON_REQUEST_ID)


def text_headers(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI header pairs as text pairs (latin-1, as HTTP/1.1 carries them), for WSGI and framework responses.

    Example::

        >>> text_headers([(b"ratelimit", b'"default";r=4;t=60')])
        [('ratelimit', '"default";r=4;t=60')]
    """
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


#: What a shell's response step raises on a ``bytearray`` or ``memoryview`` header name or value (looked up in a
#: dict or hashed, or a bytes method called): it then reads the headers again through :func:`bytes_headers`.
BYTES_LIKE_ERRORS = (TypeError, AttributeError, ValueError)
_BYTES_LIKE = (bytearray, memoryview)


def bytes_headers(headers: Iterable[Any]) -> list[Any] | None:
    """An ASGI app's response headers with each ``bytearray`` or ``memoryview`` name and value made ``bytes``
    (servers accept them; a dict lookup does not); None when there is none (a one-shot iterable already read has
    none left).

    Example::

        bytes_headers([(b"content-type", bytearray(b"text/html"))])   # [(b'content-type', b'text/html')]
    """
    pairs = list(headers)
    if not any(isinstance(part, _BYTES_LIKE) for pair in pairs if isinstance(pair, (tuple, list)) for part in pair):
        return None
    return [tuple(bytes(part) if isinstance(part, _BYTES_LIKE) else part for part in pair) for pair in pairs]


def bytes_or_raise(headers: Iterable[Any], error: BaseException) -> list[Any]:
    """:func:`bytes_headers`, or ``error`` (what reading ``headers`` raised) raised again when no name or value
    is a ``bytearray`` or ``memoryview``: then the app sent something else, which stays its error.

    Example::

        except BYTES_LIKE_ERRORS as exc:
            message["headers"] = merge(context, status, bytes_or_raise(headers, exc))
    """
    as_bytes = bytes_headers(headers)
    if as_bytes is None:
        raise error
    return as_bytes


def get_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes) in ASGI header pairs."""
    for k, v in headers:
        if k == name or k.lower() == name:
            return v
    return None


def merge_vary(existing: str | None, add: Iterable[str]) -> str:
    """``existing`` Vary value with ``add`` merged in, without duplicates (case-insensitive), order kept.

    Example::

        >>> merge_vary("Accept-Encoding, origin", ["Origin", "Access-Control-Request-Method"])
        'Accept-Encoding, origin, Access-Control-Request-Method'
    """
    items = [v.strip() for v in (existing or "").split(",") if v.strip()]
    if "*" in items:
        return "*"
    seen = {v.lower() for v in items}
    for value in add:
        if value.lower() not in seen:
            items.append(value)
            seen.add(value.lower())
    return ", ".join(items)


async def asgi_problem(
    send: Send,
    exc_or_status: BaseException | int,
    *,
    scope: Mapping[str, Any] | None = None,
    headers: Iterable[tuple[str, str]] = (),
    detail: str | None = None,
    policy: ErrorPolicy | None = None,
) -> None:
    """Send a whole error response on an ASGI ``send`` (the response must not have started), rendered under
    ``policy`` (the stack's :class:`~backend_guard.errors.ErrorPolicy`; default: problem documents)."""
    status, base, body = (policy or DEFAULT_POLICY).render(
        exc_or_status,
        request_id=request_id_from_scope(scope) if scope else None,
        path=scope.get("path") if scope else None,
        headers=headers,
        detail=detail,
    )
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


#: The ASGI extension letting an app answer a WebSocket handshake with an HTTP response (a denial response).
_DENIAL = "websocket.http.response"
#: RFC 6455 close code 1008: the endpoint refuses a message that violates its policy.
_POLICY_VIOLATION = 1008


async def deny_handshake(
    scope: Mapping[str, Any], send: Send, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> None:
    """Refuse a WebSocket handshake before ``websocket.accept`` with a rendered document (``status``, raw
    ``headers``, ``body``): a denial response when the server offers the ``websocket.http.response`` extension
    (uvicorn does), else ``websocket.close`` with code 1008 (the server answers the handshake with a 403; the
    status and headers are lost). The one WebSocket refusal: the layers' (``refuse_asgi``), the ErrorEnvelope's
    and the route decorators' all end here.

    Example::

        await deny_handshake(scope, send, 429, [(b"retry-after", b"3")], body)
    """
    if _DENIAL not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
        return
    await send({"type": "websocket.http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "websocket.http.response.body", "body": body})


def wsgi_problem(
    start_response: StartResponse,
    exc_or_status: BaseException | int,
    *,
    environ: Mapping[str, Any] | None = None,
    headers: Iterable[tuple[str, str]] = (),
    detail: str | None = None,
    exc_info: Any = None,
    policy: ErrorPolicy | None = None,
) -> list[bytes]:
    """Start an error response on a WSGI ``start_response`` and return its body iterable, rendered under
    ``policy`` (the stack's :class:`~backend_guard.errors.ErrorPolicy`; default: problem documents)."""
    status, base, body = (policy or DEFAULT_POLICY).render(
        exc_or_status,
        request_id=request_id_from_environ(environ) if environ else None,
        path=(environ.get("PATH_INFO") or "/") if environ else None,
        headers=headers,
        detail=detail,
    )
    start_response(f"{status} {status_title(status)}", base, exc_info)
    return [body]
