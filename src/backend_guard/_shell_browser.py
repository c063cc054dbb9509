"""What the browser-session shells (ASGI and WSGI) share: their arguments checked once, exempt paths, refusals.

What lives here: :class:`ExemptPaths` (the paths a cross-origin protection middleware never refuses, checked
like the HTTPS redirect's), the argument checks of the three middlewares (a policy object, or the values to
build one) and the errors their refusals render (:class:`~backend_guard.exceptions.CrossOriginRequest`,
:class:`~backend_guard.exceptions.UnknownHost`). No I/O: the shells read the request and send the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import events
from ._check import check_instance, check_strs, optional
from .csrf import CrossOriginDecision, CrossOriginProtection
from .csrf._policy import publish_refusal
from .exceptions import ConfigurationError, CrossOriginRequest, UnknownHost
from .hosts import HTTPSRedirect, TrustedHosts

__all__ = [
    "VIEW_KEY",
    "ExemptPaths",
    "cross_origin_policy",
    "environ_host",
    "host_refused",
    "https_redirect_policy",
    "refusal",
    "trusted_hosts_policy",
    "unknown_host",
]

#: The request key (scope or environ) of a framework's view resolver: ``resolver(request) -> view | None``,
#: asked only when a request is about to be refused, so a view marked ``csrf_exempt`` is honoured.
VIEW_KEY = "backend_guard.view"


class ExemptPaths:
    """Paths a cross-origin protection middleware never refuses: ``"/webhooks/stripe"`` exactly, ``"/hooks/"``
    (ending in ``/``) everything under it. Each starts with ``/``; ``"/"`` alone is refused (it would exempt
    every path: leave the protection out instead).

    Example::

        >>> paths = ExemptPaths(("/hooks/", "/stripe"))
        >>> paths.is_exempt("/hooks/github"), paths.is_exempt("/stripe"), paths.is_exempt("/stripe/x")
        (True, True, False)
    """

    __slots__ = ("exact", "prefixes")

    def __init__(self, paths: Iterable[str] = (), *, setting: str = "CrossOriginProtectionMiddleware") -> None:
        if isinstance(paths, str | bytes):
            raise ConfigurationError(f"{setting} exempt_paths takes a list of paths, not one string: ({paths!r},).")
        values = list(check_strs(f"{setting} exempt_paths", paths))
        for path in values:
            _check_path(path, setting)
        self.prefixes = tuple(sorted(p for p in values if p.endswith("/")))
        self.exact = frozenset(values) - set(self.prefixes)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def is_exempt(self, path: str) -> bool:
        """True when ``path`` is listed, or under a listed prefix."""
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))


def _is_path(path: object) -> bool:
    return isinstance(path, str) and path.startswith("/") and not any(c in path for c in "?# \t\r\n")


def _check_path(path: object, setting: str) -> None:
    if not _is_path(path):
        raise ConfigurationError(
            f"{setting} exempt path {path!r} is not a path; write '/webhooks/stripe' (exactly) or '/webhooks/'"
            " (everything under it), without a query."
        )
    if path == "/":
        raise ConfigurationError(f"{setting} exempt path '/' exempts every path; leave the protection out instead.")


def environ_host(environ: Mapping[str, Any]) -> str | None:
    """A WSGI request's host: ``HTTP_HOST``, else (no ``Host`` header, as HTTP/1.0 and test clients send) the
    server's own ``SERVER_NAME:SERVER_PORT`` (PEP 3333's URL reconstruction; Django's ``get_host``).

    Example::

        >>> environ_host({"SERVER_NAME": "testserver", "SERVER_PORT": "80"})
        'testserver:80'
    """
    host: str | None = environ.get("HTTP_HOST")
    if host is None and environ.get("SERVER_NAME"):
        host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '')}".removesuffix(":")
    return host


def cross_origin_policy(policy: object) -> CrossOriginProtection:
    """The policy of a CrossOriginProtectionMiddleware: the one given, or the default one for None.

    Example::

        >>> cross_origin_policy(None).allow_same_site
        False
    """
    found: CrossOriginProtection | None = optional(
        check_instance, "CrossOriginProtectionMiddleware policy", policy, CrossOriginProtection
    )
    return CrossOriginProtection() if found is None else found


def trusted_hosts_policy(policy: object) -> TrustedHosts:
    """The policy of a TrustedHostMiddleware: a :class:`TrustedHosts`, or a list of hosts to build one from.

    Example::

        >>> trusted_hosts_policy(["example.com"]).allows("example.com")
        True
    """
    if isinstance(policy, TrustedHosts):
        return policy
    if isinstance(policy, list | tuple):
        return TrustedHosts(policy)
    raise ConfigurationError(
        "TrustedHostMiddleware needs policy=TrustedHosts(['example.com', ...]) (or a list of hosts),"
        f" not {type(policy).__name__}."
    )


#: HTTPSRedirect's own defaults: what an HTTPSRedirectMiddleware given a ``policy=`` must leave as they are.
_REDIRECT_DEFAULTS = {"safe_status": 301, "trusted_hosts": None, "https_port": None}


def https_redirect_policy(policy: object, exempt_paths: Iterable[str], options: dict[str, Any]) -> HTTPSRedirect:
    """The policy of an HTTPSRedirectMiddleware: ``policy``, or one built from ``exempt_paths`` and ``options``
    (``safe_status``, ``trusted_hosts``, ``https_port``); not both.

    Example::

        >>> https_redirect_policy(None, ("/health",), {"safe_status": 308}).safe_status
        308
    """
    found: HTTPSRedirect | None = optional(check_instance, "HTTPSRedirectMiddleware policy", policy, HTTPSRedirect)
    if found is None:
        return HTTPSRedirect(exempt_paths, **options)
    if tuple(exempt_paths) or options != _REDIRECT_DEFAULTS:
        raise ConfigurationError("HTTPSRedirectMiddleware takes either policy= or its arguments, not both.")
    return found


def refusal(decision: CrossOriginDecision, *, websocket: bool = False) -> CrossOriginRequest:
    """The error a refused decision renders: 403 ``cross-origin-request`` with the decision's reason; its
    ``csrf.refused`` event is published here, so call it only once the request is refused (not exempt).

    Example::

        >>> import backend_guard as bg
        >>> d = bg.CrossOriginProtection().check("POST", scheme="https", host="a.example", origin=["null"])
        >>> refusal(d).status, refusal(d).code
        (403, 'cross-origin-request')
    """
    publish_refusal(decision, websocket=websocket)
    return CrossOriginRequest(decision.reason)


def unknown_host() -> UnknownHost:
    """The error an unknown ``Host`` renders: 400 ``unknown-host`` (the host itself is not echoed).

    Example::

        >>> unknown_host().code
        'unknown-host'
    """
    return UnknownHost("The request's Host is not one this server answers for.")


_MAX_EVENT_HOST = 256  # a Host comes from the client: an event shows at most this much of it


def host_refused(hosts: str | bytes | Sequence[str | bytes] | None) -> None:
    """Publish ``hosts.refused`` for a request refused for its ``Host`` (the request's ``Host`` values, or the
    WSGI host): ``reason`` (``missing``, ``several`` or ``unknown``) and the ``host`` on one line, cut to 256
    characters. Only when a callback listens; called on the refusal's path, never on an allowed request's.

    Example::

        host_refused([b"evil.example"])
    """
    if not events.listening("hosts"):
        return
    values = [hosts] if isinstance(hosts, str | bytes) else list(hosts or ())
    reason = "missing" if not values else "several" if len(values) > 1 else "unknown"
    first = values[0] if values else None
    text = first.decode("latin-1") if isinstance(first, bytes) else first
    shown = None if text is None else text[:_MAX_EVENT_HOST].encode("unicode_escape").decode("ascii")
    events.emit("hosts", "hosts.refused", reason=reason, host=shown)
