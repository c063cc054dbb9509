"""The HTTPS redirect decision: does a plain-HTTP request get redirected, with which status, to which URL?

What lives here: :class:`HTTPSRedirect` and its answer :class:`Redirect`. Rules (the docs' table):

- only requests whose resolved scheme is ``http`` are redirected (``https``, ``ws`` and ``wss`` never);
- exempt paths are not redirected (health checks from a load balancer that speaks plain HTTP): an entry ending
  in ``/`` exempts every path under it (``"/internal/"``), any other entry exactly that path (``"/health"``);
- ``GET`` and ``HEAD`` get ``safe_status`` (301, or 308), every other method 308 (a 301 lets clients turn a
  POST into a GET, dropping its body);
- the target's host is the request's host, parsed by the strict ``Host`` grammar and, when a
  :class:`TrustedHosts` is given, allowed by it: otherwise there is no redirect (never an open redirect); the
  port is ``https_port`` (443 when None), never the plain-HTTP port;
- the ``Location`` is built from parsed parts: characters outside the URL grammar (CR, LF, spaces, non-ASCII)
  are percent-encoded, and a path starting with several slashes keeps one, so no value ends the header or
  names another host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import quote

from .._check import check_strs
from ..exceptions import ConfigurationError
from ._host import parse_host
from ._trusted import TrustedHosts

__all__ = ["HTTPSRedirect", "Redirect"]

_SETTING = "HTTPSRedirect"
_SAFE_FOR_REDIRECT = frozenset({"GET", "HEAD"})
# RFC 3986 pchar and sub-delims, "/" and "%" (an escape already there is kept): everything else is encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
_MAX_PATH = 8192  # longer request targets are refused by servers long before; here they get no redirect


class Redirect(NamedTuple):
    """A redirect to send: the status (301 or 308) and the absolute ``Location``.

    Example::

        >>> HTTPSRedirect().redirect("POST", scheme="http", host="example.com", path="/login")
        Redirect(status=308, location='https://example.com/login')
    """

    status: int
    location: str


class HTTPSRedirect:
    """Redirect plain-HTTP requests to HTTPS: 308 for unsafe methods, 301 (or 308) for ``GET``/``HEAD``.

    :param exempt_paths: paths not redirected: ``"/health"`` exactly, ``"/internal/"`` (ending in ``/``)
        everything under it. Each starts with ``/``; ``"/"`` alone is refused (it would exempt every path).
    :param safe_status: the status for ``GET`` and ``HEAD``: 301 (cached by browsers) or 308.
    :param trusted_hosts: the :class:`TrustedHosts` policy: hosts it refuses get no redirect.
    :param https_port: the HTTPS port of the target (None: the default, 443).

    Example::

        >>> import backend_guard as bg
        >>> redirect = bg.HTTPSRedirect(exempt_paths=("/health",), trusted_hosts=bg.TrustedHosts(["example.com"]))
        >>> redirect.redirect("GET", scheme="http", host="example.com:80", path="/a b", query="x=1")
        Redirect(status=301, location='https://example.com/a%20b?x=1')
        >>> redirect.redirect("GET", scheme="http", host="evil.net", path="/") is None
        True
        >>> redirect.redirect("GET", scheme="http", host="example.com", path="/health") is None
        True
    """

    __slots__ = ("exact_paths", "https_port", "path_prefixes", "safe_status", "trusted_hosts")

    def __init__(
        self,
        exempt_paths: Iterable[str] = (),
        *,
        safe_status: int = 301,
        trusted_hosts: TrustedHosts | None = None,
        https_port: int | None = None,
    ) -> None:
        _check_settings(safe_status, trusted_hosts, https_port)
        self.exact_paths, self.path_prefixes = _exempt_paths(exempt_paths)
        self.safe_status = safe_status
        self.trusted_hosts = trusted_hosts
        self.https_port = None if https_port == 443 else https_port  # 443 is written as no port

    def is_exempt(self, path: str) -> bool:
        """True when ``path`` is an exempt path (exactly, or under an entry ending in ``/``).

        Example::

            >>> HTTPSRedirect(exempt_paths=("/internal/",)).is_exempt("/internal/metrics")
            True
        """
        return path in self.exact_paths or path.startswith(self.path_prefixes)

    def redirect(
        self,
        method: str,
        *,
        scheme: str,
        host: str | bytes | None,
        path: str,
        query: str | bytes = "",
        route: str | None = None,
    ) -> Redirect | None:
        """The redirect for one request, or None when it goes on as it is.

        :param method: the request method.
        :param scheme: the scheme as resolved from trusted proxies: only ``"http"`` is redirected.
        :param host: the ``Host`` value as resolved (one value).
        :param path: the request path (preferably still percent-encoded, as received).
        :param query: the query string without ``?`` (empty when none).
        :param route: the path the app routes on, which ``exempt_paths`` match (an ASGI app under a
            ``root_path``: the path without it); default ``path``.
        """
        if not self._applies(scheme, path, path if route is None else route):
            return None
        target = self._target_host(host)
        if target is None:
            return None
        status = self.safe_status if method in _SAFE_FOR_REDIRECT else 308
        return Redirect(status, f"https://{target}{_location_path(path)}{_location_query(query)}")

    def _applies(self, scheme: str, path: str, route: str) -> bool:
        """True for a plain-HTTP request to a path whose ``route`` is not exempt (and not overlong)."""
        return scheme == "http" and isinstance(path, str) and len(path) <= _MAX_PATH and not self.is_exempt(route)

    def _target_host(self, host: str | bytes | None) -> str | None:
        """``host[:port]`` of the target, or None when the host is invalid or not trusted."""
        if not self._trusted(host):
            return None
        parsed = parse_host(host)
        if parsed is None:
            return None
        return self._with_port(parsed.host)

    def _trusted(self, host: str | bytes | None) -> bool:
        """True when no :class:`TrustedHosts` is set or it allows ``host``."""
        return self.trusted_hosts is None or self.trusted_hosts.allows(host)

    def _with_port(self, host: str) -> str:
        """The target's ``host[:port]``: the port written only when it is not 443."""
        return host if self.https_port is None else f"{host}:{self.https_port}"


def _location_path(path: str) -> str:
    # "/" + the path without its leading slashes: "//evil.net/x" stays a path on our host, written "/evil.net/x"
    return "/" + quote(path.lstrip("/"), safe=_PATH_SAFE)


def _location_query(query: str | bytes) -> str:
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    if isinstance(query, str) and 0 < len(query) <= _MAX_PATH:
        return "?" + quote(query, safe=_QUERY_SAFE)  # "/" is in it already (_PATH_SAFE)
    return ""


def _check_settings(safe_status: object, trusted_hosts: object, https_port: object) -> None:
    _check_safe_status(safe_status)
    _check_trusted_hosts(trusted_hosts)
    _check_port(https_port)


def _check_safe_status(safe_status: object) -> None:
    if safe_status not in (301, 308) or isinstance(safe_status, bool):
        raise ConfigurationError(f"{_SETTING} safe_status must be 301 or 308, got {safe_status!r}.")


def _check_trusted_hosts(trusted_hosts: object) -> None:
    if trusted_hosts is not None and not isinstance(trusted_hosts, TrustedHosts):
        raise ConfigurationError(f"{_SETTING} trusted_hosts must be a TrustedHosts, got {trusted_hosts!r}.")


def _check_port(port: object) -> None:
    if port is not None and not _is_port(port):
        raise ConfigurationError(f"{_SETTING} https_port must be a port number (1-65535) or None, got {port!r}.")


def _is_port(port: object) -> bool:
    """An int from 1 to 65535 (not a bool)."""
    return isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536


def _exempt_paths(values: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """``(exact paths, prefixes)``: entries ending in ``/`` are prefixes, each entry checked."""
    if isinstance(values, str | bytes):
        raise ConfigurationError(f"{_SETTING} exempt_paths takes a list of paths, not one string: write ({values!r},).")
    paths = list(check_strs(f"{_SETTING} exempt_paths", values))
    for path in paths:
        _check_exempt_path(path)
    prefixes = _prefixes(paths)
    return frozenset(paths) - set(prefixes), prefixes


def _prefixes(paths: list[str]) -> tuple[str, ...]:
    """The entries ending in ``/`` (everything under them is exempt), sorted."""
    return tuple(sorted(p for p in paths if p.endswith("/")))


def _is_path(path: object) -> bool:
    """A path as exempt paths are written: text starting with ``/``, no query, fragment or white space."""
    return isinstance(path, str) and path.startswith("/") and not any(c in path for c in "?# \t\r\n")


def _check_exempt_path(path: object) -> None:
    if not _is_path(path):
        raise ConfigurationError(
            f"{_SETTING} exempt path {path!r} is not a path; write '/health' (exactly) or '/internal/'"
            " (everything under it), without a query."
        )
    if path == "/":
        raise ConfigurationError(f"{_SETTING} exempt path '/' exempts every path; leave HTTPSRedirect out instead.")
