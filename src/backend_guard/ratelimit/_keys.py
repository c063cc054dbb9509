"""What one request is charged in rate limiting: its key, the handler's bucket name and the charge.

The route hooks (:mod:`._routes`), the middlewares' rules and :class:`~backend_guard.ratelimit.RateLimiter`
all use these; :mod:`backend_guard.ratelimit` re-exports them (the documented place to import them from). They
live apart from the limiter so the route hooks need not import the limiter that builds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._cache import BoundedCache
from .._check import check_instance, check_int, optional
from ..clientip import ClientIP, address_bucket
from ..exceptions import ConfigurationError
from ..request import RequestView, view_from_environ, view_from_scope

if TYPE_CHECKING:
    from ._rates import Rate

__all__ = ["BUCKET_METHODS", "Charge", "KeyFunc", "KeyResolver", "bucket_method", "handler_name"]


@dataclass(frozen=True, slots=True)
class Charge:
    """What one request costs against one key: the limits, the cost and a scope separating buckets.

    Two charges with the same ``key`` and ``scope`` share counters; a different ``scope`` (a route, a rule
    name) counts separately. :meth:`RateLimiter.hit_all` decides several charges in one atomic call.

    Example::

        limiter.hit_all([Charge("1.2.3.4", parse_limits(["100/minute"])),
                         Charge("1.2.3.4", parse_limits(["5/minute"]), scope="POST /login")])
    """

    key: str
    rates: tuple[Rate, ...]
    cost: int = 1
    scope: str = ""
    name: str | None = None


def handler_name(func: Callable[..., Any]) -> str:
    """The name of a route handler in rate limit buckets: its module and qualified name, the same in every process.

    Never an ``id()`` or anything else of one process: workers and restarts must count a handler in one bucket.
    Decorators made with ``functools.wraps`` keep the name of the function they wrap.

    Example::

        >>> def item(): ...
        >>> handler_name(item).endswith(".item")
        True
    """
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{qualname}"


KeyFunc = Callable[["RequestView"], "str | None"]


#: The methods a per-method bucket is kept for (RFC 9110, and PATCH of RFC 5789); HEAD counts as GET.
BUCKET_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def bucket_method(method: str) -> str | None:
    """The method a per-method rate limit bucket counts a request under: upper case, HEAD as GET.

    HEAD runs the GET handler (the server drops the body), so counting it apart would double a client's quota.
    Any other method than HTTP's standard ones gives None: it has no bucket of its own (a handler answering
    any method, such as a Django function view, would otherwise give a fresh quota to every invented name).

    Example::

        >>> bucket_method("head"), bucket_method("POST"), bucket_method("FOO")
        ('GET', 'POST', None)
    """
    upper = method.upper()
    if upper == "HEAD":
        return "GET"
    return upper if upper in BUCKET_METHODS else None


def _key_header(spec: KeyFunc | str | None) -> str | None:
    """The header a key spec names (lower case), None for ``"ip"`` or a callable; anything else is refused."""
    if spec is None or spec == "ip" or callable(spec):
        return None
    return _header_name(spec)


def _header_name(spec: object) -> str:
    """The header of a ``"header:NAME"`` key spec (lower case); any other spec is refused."""
    if isinstance(spec, str) and spec.lower().startswith("header:") and len(spec) > 7:
        return spec[7:].strip().lower()
    raise ConfigurationError("key must be 'ip', 'header:<name>' or a callable taking a RequestView.")


def _header_forms(header: str | None) -> tuple[bytes, str]:
    """The key header as an ASGI header name and as a WSGI environ key (empty: no key header)."""
    if not header:
        return b"", ""
    return header.encode("latin-1"), "HTTP_" + header.upper().replace("-", "_")


class KeyResolver:
    """Turns a key spec into the rate limit key of a request (an ASGI scope, a WSGI environ or a view).

    ``"ip"`` (default): the client address through ``client_ip`` (trusted proxies only; a spoofed
    ``X-Forwarded-For`` from anyone else is ignored), IPv6 bucketed by ``/ipv6_prefix``. ``"header:NAME"``:
    a digest of that header's value (an API key never lands in the store in clear), falling back to the
    address when the header is missing. A callable gets the :class:`~backend_guard.request.RequestView` and
    returns the key, or None to exempt the request.

    Example::

        KeyResolver("header:X-API-Key").from_scope(scope)   # 'hdr:3f1c...'
    """

    def __init__(self, spec: KeyFunc | str | None = None, client_ip: ClientIP | None = None, ipv6_prefix: int = 64):
        optional(check_instance, "client_ip", client_ip, ClientIP)
        check_int("ipv6_prefix", ipv6_prefix, min=1, max=128)
        self.client_ip = client_ip or ClientIP()
        self.ipv6_prefix = ipv6_prefix
        self.func: KeyFunc | None = spec if callable(spec) else None
        self.header: str | None = _key_header(spec)
        self._header_bytes, self._environ_key = _header_forms(self.header)
        self._ips: BoundedCache[str, str] = BoundedCache("ratelimit.addresses", max_entries=8192, max_bytes=2 << 20)
        #: True when the key is the peer address alone (no callable, no key header, no trusted proxy): the key of
        #: an ASGI request then follows from ``scope["client"]`` alone, so a caller may cache by that address.
        self.peer_only: bool = self._keyed_by_peer()
        self._peer_only = self.peer_only

    def _keyed_by_peer(self) -> bool:
        """True in the common case: the key is the peer address (no callable, no header, no trusted proxy)."""
        return self.func is None and self.header is None and not self.client_ip.enabled

    def _ip(self, address: str) -> str:
        found = self._ips.get(address)
        if found is None:
            found = self.peer_key(address)
            self._ips.put(address, found)  # bounded: addresses come from clients
        return found

    def peer_key(self, address: str) -> str:
        """The key of a request from ``address`` when the peer is the client (:attr:`peer_only`), made each time:
        for a caller that keeps what it makes of the key under the address itself (a middleware's plans).

        Example::

            KeyResolver().peer_key("2001:db8::1")   # 'ip:2001:db8::/64'
        """
        return "ip:" + address_bucket(address, self.ipv6_prefix)

    @staticmethod
    def _digest(value: str) -> str:
        return "hdr:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def from_scope(self, scope: Any) -> str | None:
        """The key for an ASGI scope."""
        if self._peer_only:  # the request path of most apps: one cache lookup
            peer = scope.get("client")
            address = peer[0] if peer else ""
            cached = self._ips.get  # loaded, then called: CPython 3.11 specialises the load of a slot
            found = cached(address)
            return found if found is not None else self._ip(address)
        if self.func is not None:
            return self.func(view_from_scope(scope, self.client_ip))
        return self._scope_header(scope) or self._ip(self._scope_address(scope))

    def _scope_header(self, scope: Any) -> str | None:
        """The digest of the key header in an ASGI scope (None: no key header, or the request has none)."""
        wanted = self._header_bytes
        if self.header is not None:
            for name, value in scope.get("headers", ()):
                if name == wanted or name.lower() == wanted:
                    return self._digest(value.decode("latin-1"))
        return None

    def _scope_address(self, scope: Any) -> str:
        """The client address of an ASGI request."""
        if self.client_ip.enabled:
            return self.client_ip.resolve_scope(scope).address
        peer = scope.get("client")  # no trusted proxy: the peer is the client (skip header parsing)
        return peer[0] if peer else ""

    def from_environ(self, environ: Any) -> str | None:
        """The key for a WSGI environ."""
        if self._peer_only:  # the request path of most apps: one cache lookup
            address = environ.get("REMOTE_ADDR") or ""
            found = self._ips.get(address)
            return found if found is not None else self._ip(address)
        if self.func is not None:
            return self.func(view_from_environ(environ, self.client_ip))
        return self._environ_header(environ) or self._ip(self._environ_address(environ))

    def _environ_header(self, environ: Any) -> str | None:
        """The digest of the key header in a WSGI environ (None: no key header, or the request has none)."""
        value = environ.get(self._environ_key) if self.header is not None else None
        return self._digest(value) if value else None

    def _environ_address(self, environ: Any) -> str:
        """The client address of a WSGI request."""
        if self.client_ip.enabled:
            return self.client_ip.resolve_environ(environ).address
        return environ.get("REMOTE_ADDR") or ""

    def from_view(self, view: RequestView) -> str | None:
        """The key for a :class:`~backend_guard.request.RequestView` (its ``client`` is already resolved)."""
        if self.func is not None:
            return self.func(view)
        if self.header is not None:
            value = view.header(self.header)
            if value:
                return self._digest(value)
        return self._ip(view.client)
