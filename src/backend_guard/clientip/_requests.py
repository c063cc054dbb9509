"""The request side of a resolution: what is read from an ASGI scope or a WSGI environ, where the result is
recorded, and how the request is rewritten.

What lives here: :class:`ResolvedClient` and the request keys it is recorded under (:data:`RESOLVED_KEY`,
:data:`ORIGINAL_KEY`), the gathering of the forwarding headers a resolver reads, and the rewrite werkzeug's
ProxyFix does (ASGI ``client``, ``scheme`` and ``Host``; WSGI ``REMOTE_ADDR``, ``wsgi.url_scheme`` and
``HTTP_HOST``). Whether a header is believed is the resolver's decision (``_resolver``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ._forwarding import WS_SCHEMES

__all__ = [
    "ENVIRON_KEYS",
    "ORIGINAL_KEY",
    "RESOLVED_KEY",
    "ResolvedClient",
    "as_websocket",
    "environ_values",
    "recorded",
    "rewrite_environ",
    "rewrite_scope",
    "scope_values",
]

#: The request key (ASGI scope, WSGI environ) holding the request's :class:`ResolvedClient`, once resolved.
RESOLVED_KEY = "backend_guard.client"
#: The request key holding the values the rewrite replaced (like werkzeug's ``werkzeug.proxy_fix.orig``):
#: ASGI ``{"client", "scheme", "host"}``, WSGI ``{"REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST"}``.
ORIGINAL_KEY = "backend_guard.client.orig"
#: The environ key of each forwarding header.
ENVIRON_KEYS = {
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
}
_ENVIRON_ORIGINALS = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST")


@dataclass(frozen=True, slots=True)
class ResolvedClient:
    """The outcome of a resolution: the client address, the scheme and host the client used.

    ``proxied`` is True when forwarding headers were believed.

    Example::

        ResolvedClient(address="203.0.113.7", scheme="https", host="api.example.com", proxied=True)
    """

    address: str
    scheme: str
    host: str | None
    proxied: bool = False


def recorded(request: Mapping[str, Any]) -> ResolvedClient | None:
    """The :class:`ResolvedClient` a layer already recorded in this scope or environ, if any.

    Example::

        >>> recorded({}) is None
        True
    """
    found = request.get(RESOLVED_KEY)
    return found if isinstance(found, ResolvedClient) else None


def scope_values(headers: Iterable[tuple[bytes, bytes]], names: frozenset[str]) -> tuple[dict[str, str], str | None]:
    """(the headers among ``names``, repeated ones comma-joined; the ``Host`` value) of ASGI header pairs.

    Example::

        >>> scope_values([(b"X-Forwarded-For", b"1.2.3.4"), (b"host", b"a.example")], frozenset({"x-forwarded-for"}))
        ({'x-forwarded-for': '1.2.3.4'}, 'a.example')
    """
    wanted: dict[str, str] = {}
    host_header = None
    for name, value in headers:
        lname = name.decode("latin-1").lower()
        if lname in names:
            _append(wanted, lname, value.decode("latin-1"))
        elif lname == "host":
            host_header = value.decode("latin-1")
    return wanted, host_header


def _append(wanted: dict[str, str], name: str, text: str) -> None:
    wanted[name] = f"{wanted[name]},{text}" if name in wanted else text


def environ_values(environ: Mapping[str, Any], keys: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The forwarding headers named by ``keys`` (``(header name, environ key)`` pairs) that are set and not empty.

    Example::

        >>> environ_values({"HTTP_X_FORWARDED_FOR": "1.2.3.4"}, [("x-forwarded-for", "HTTP_X_FORWARDED_FOR")])
        {'x-forwarded-for': '1.2.3.4'}
    """
    wanted: dict[str, str] = {}
    for lname, key in keys:
        value = environ.get(key)
        if value:
            wanted[lname] = value
    return wanted


def as_websocket(scope: Mapping[str, Any], resolved: ResolvedClient) -> ResolvedClient:
    """``resolved`` with a WebSocket scheme (``ws``/``wss``) for a ``websocket`` scope; as it is otherwise.

    Example::

        >>> as_websocket({"type": "websocket"}, ResolvedClient("192.0.2.7", "https", None)).scheme
        'wss'
    """
    if scope.get("type") == "websocket" and resolved.scheme in WS_SCHEMES:
        return ResolvedClient(resolved.address, WS_SCHEMES[resolved.scheme], resolved.host, resolved.proxied)
    return resolved


def rewrite_scope(scope: MutableMapping[str, Any], resolved: ResolvedClient) -> None:
    """Record ``resolved`` in an ASGI scope (the replaced values under :data:`ORIGINAL_KEY`) and, when proxied,
    make the scope's ``client``, ``scheme`` and ``host`` header the resolved ones.

    Example::

        rewrite_scope(scope, ResolvedClient("203.0.113.7", "https", None, proxied=True))
        scope["client"]   # ('203.0.113.7', 0)
    """
    headers = scope.get("headers", ())
    host = next((v for k, v in headers if k.lower() == b"host"), None)
    scope[ORIGINAL_KEY] = {"client": scope.get("client"), "scheme": scope.get("scheme"), "host": host}
    scope[RESOLVED_KEY] = resolved
    if resolved.proxied:
        _rewrite_proxied_scope(scope, resolved, headers, host)


def _rewrite_proxied_scope(
    scope: MutableMapping[str, Any], resolved: ResolvedClient, headers: Any, host: bytes | None
) -> None:
    if _new_client(scope.get("client"), resolved.address):
        scope["client"] = (resolved.address, 0)
    scope["scheme"] = resolved.scheme
    if resolved.host is not None:
        _rewrite_host(scope, headers, host, resolved.host.encode("latin-1"))


def _rewrite_host(scope: MutableMapping[str, Any], headers: Any, host: bytes | None, new_host: bytes) -> None:
    """Make ``new_host`` the scope's one ``host`` header (the header list is left alone when it already is)."""
    if new_host != host:
        scope["headers"] = [(k, v) for k, v in headers if k.lower() != b"host"] + [(b"host", new_host)]


def _new_client(peer: Any, address: str) -> bool:
    """True when ``address`` replaces the scope's ``client``: there is one, and it is not the peer's own.

    No address (a Unix socket peer, only the scheme forwarded): the client stays unknown, not ``""``.
    """
    return bool(address) and (not peer or peer[0] != address)


def rewrite_environ(environ: MutableMapping[str, Any], resolved: ResolvedClient) -> None:
    """Record ``resolved`` in a WSGI environ (the replaced values under :data:`ORIGINAL_KEY`) and, when proxied,
    make ``REMOTE_ADDR``, ``wsgi.url_scheme`` and ``HTTP_HOST`` the resolved ones.

    Example::

        rewrite_environ(environ, ResolvedClient("203.0.113.7", "https", None, proxied=True))
        environ["REMOTE_ADDR"]   # '203.0.113.7'
    """
    environ[ORIGINAL_KEY] = {key: environ.get(key) for key in _ENVIRON_ORIGINALS}
    environ[RESOLVED_KEY] = resolved
    if resolved.proxied:
        _rewrite_proxied_environ(environ, resolved)


def _rewrite_proxied_environ(environ: MutableMapping[str, Any], resolved: ResolvedClient) -> None:
    if resolved.address:
        environ["REMOTE_ADDR"] = resolved.address
    environ["wsgi.url_scheme"] = resolved.scheme
    if resolved.host is not None:
        environ["HTTP_HOST"] = resolved.host
