"""The WSGI shells of the ``Host`` allowlist and of the HTTPS redirect: ask the policy, answer early.

All decisions live in :mod:`backend_guard.hosts`; these shells only translate (the same behaviour as the ASGI
middlewares of the same names). They read ``wsgi.url_scheme`` and ``HTTP_HOST`` as ProxyHeaders resolved them
(or ``client_ip`` here, when one runs alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any
from urllib.parse import quote

from .._check import check_instance, optional
from .._http import StartResponse, WSGIApp
from .._layer import Answer
from .._shell_browser import environ_host, host_refused, https_redirect_policy, trusted_hosts_policy, unknown_host
from ..clientip import ClientIP
from ..errors import ErrorPolicy, status_title
from ..hosts import HTTPSRedirect, Redirect, TrustedHosts
from ._csrf import refuse_wsgi
from ._layer_shell import LayerMiddleware

__all__ = ["HTTPSRedirectMiddleware", "TrustedHostMiddleware"]

# RFC 3986 pchar and "/": the WSGI path is decoded, so a "%" in it is data, encoded like any other character.
_PATH_CHARS = "/:@!$&'()*+,;=-._~"


def _refuse_unknown_host(
    environ: dict[str, Any], start_response: StartResponse, policy: ErrorPolicy | None = None
) -> Iterable[bytes]:
    host_refused(environ_host(environ))
    return refuse_wsgi(unknown_host(), environ, start_response, policy)


class TrustedHostMiddleware(LayerMiddleware):
    """WSGI middleware answering 400 problem+json (``unknown-host``) to a request whose ``Host`` is not allowed
    by a :class:`~backend_guard.TrustedHosts`. Without a ``Host`` header, the server's ``SERVER_NAME`` (and
    ``SERVER_PORT``) is checked, as Django's ``get_host`` does. ``policy`` may also be the list of hosts.
    ``errors``: the :class:`~backend_guard.errors.ErrorPolicy` the 400 is rendered with (default: problem
    documents; a stack built from settings passes its own).

    Example::

        app.wsgi_app = TrustedHostMiddleware(app.wsgi_app, policy=bg.TrustedHosts(["example.com"]))
    """

    touches: frozenset[str] = frozenset()  # no response header

    def __init__(
        self, app: WSGIApp, policy: Any, *, client_ip: ClientIP | None = None, errors: ErrorPolicy | None = None
    ) -> None:
        self.app = app
        self.policy = trusted_hosts_policy(policy)
        self.client_ip = optional(check_instance, "client_ip", client_ip, ClientIP)
        errors = optional(check_instance, "errors", errors, ErrorPolicy)
        self._refusal: Answer[WSGIApp] = Answer(partial(_refuse_unknown_host, policy=errors))

    def on_request(self, environ: dict[str, Any]) -> Answer[WSGIApp] | None:
        """None for an allowed host; an :class:`Answer` refusing the request (400) otherwise."""
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        if self.policy.allows(environ_host(environ)):
            return None
        return self._refusal


class HTTPSRedirectMiddleware(LayerMiddleware):
    """WSGI middleware redirecting plain-HTTP requests to HTTPS with an :class:`~backend_guard.HTTPSRedirect`
    (the same arguments and behaviour as the ASGI middleware of the same name).

    Example::

        app.wsgi_app = HTTPSRedirectMiddleware(app.wsgi_app, exempt_paths=("/health",))
    """

    touches: frozenset[str] = frozenset()  # no response header

    def __init__(
        self,
        app: WSGIApp,
        exempt_paths: Iterable[str] = (),
        *,
        safe_status: int = 301,
        trusted_hosts: TrustedHosts | None = None,
        https_port: int | None = None,
        policy: HTTPSRedirect | None = None,
        client_ip: ClientIP | None = None,
    ) -> None:
        self.app = app
        options = {"safe_status": safe_status, "trusted_hosts": trusted_hosts, "https_port": https_port}
        self.policy = https_redirect_policy(policy, exempt_paths, options)
        self.client_ip = optional(check_instance, "client_ip", client_ip, ClientIP)

    def on_request(self, environ: dict[str, Any]) -> Answer[WSGIApp] | None:
        """None when the request goes on; an :class:`Answer` sending the redirect otherwise."""
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        if environ.get("wsgi.url_scheme", "http") != "http":
            return None  # the common case: already HTTPS
        found = self.policy.redirect(
            environ.get("REQUEST_METHOD", "GET"),
            scheme="http",
            host=environ_host(environ),  # None: no redirect
            path=_request_path(environ),
            query=environ.get("QUERY_STRING", ""),
        )
        return None if found is None else Answer(partial(_send_redirect, found))


def _request_path(environ: dict[str, Any]) -> str:
    """The request path percent-encoded again from the decoded ``SCRIPT_NAME`` and ``PATH_INFO``."""
    return quote(_path_bytes(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")), safe=_PATH_CHARS)


def _path_bytes(path: str) -> bytes:
    """The path's bytes: PEP 3333 carries them as latin-1 characters (``/caf%C3%A9`` is ``"/caf\\xc3\\xa9"``);
    a path that is no such UTF-8 byte string is text (Django's ``path_info`` under ASGI), encoded as UTF-8."""
    try:
        raw = path.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeError:
        return path.encode("utf-8", "replace")
    return raw


def _send_redirect(redirect: Redirect, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        f"{redirect.status} {status_title(redirect.status)}",
        [("Location", redirect.location), ("Content-Length", "0")],
    )
    return [b""]
