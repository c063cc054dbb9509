"""WSGI CORS middleware: the same CORSPolicy decisions as the ASGI shell, over an environ and start_response.

Note: a WSGI server joins repeated ``Origin`` headers with ``","``, which never parses as an origin, so several
``Origin`` headers are refused here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from .. import events
from .._cache import BoundedCache
from .._check import check_instance, optional
from .._http import StartResponse, WSGIApp, merge_vary, text_headers, wsgi_problem
from .._layer import Answer
from .._shell_browser import environ_host
from .._shell_headers import with_cors
from ..cors import STATE_KEY, CORSPolicy
from ..cors._policy import actual_refused, cors_policies
from ..errors import ErrorPolicy
from ._layer_shell import LayerMiddleware

__all__ = ["CORSMiddleware"]

_NOTED = "backend_guard.cors_refused"  # set in the environ once the refusal's event is published
_VARY_ORIGIN = ("Vary", "Origin")
_Pairs = tuple[tuple[str, str], ...]
#: Bounds of the memory of what ``appended`` returns by Origin (Origins come from clients).
_SUFFIXES = 256
_SUFFIXES_BYTES = 1 << 20


def _origin(environ: dict[str, Any]) -> bytes | None:
    """The request's Origin as the bytes the client sent (PEP 3333: header values are latin-1 decoded str)."""
    origin_text: str | None = environ.get("HTTP_ORIGIN")
    return origin_text.encode("latin-1", "replace") if origin_text is not None else None


def _refused(environ: dict[str, Any], origin: bytes) -> None:
    """An actual request from a refused origin, while a callback listens: ``cors.refused``, once per request (a
    response's steps may ask the CORS answer twice)."""
    if _NOTED not in environ:
        environ[_NOTED] = True
        actual_refused(origin, environ_host(environ), environ.get("HTTP_SEC_FETCH_SITE"))


class CORSMiddleware(LayerMiddleware):
    """WSGI middleware applying a :class:`~backend_guard.CORSPolicy` (answers preflights itself).

    Same arguments as the ASGI one: ``policy`` (or a list of path-scoped policies, the first covering the path
    decides) or CORSPolicy keyword arguments, and ``errors`` (the policy a refused preflight is rendered with). A
    per-route override for actual responses is read from ``environ["backend_guard.cors"]`` when the response starts.

    Example::

        app.wsgi_app = CORSMiddleware(app.wsgi_app, policy=bg.CORSPolicy(allow_origins=["https://app.example.com"]))
    """

    touches = frozenset({"vary"})
    touched_prefixes = ("access-control-",)

    def __init__(
        self,
        app: WSGIApp,
        policy: CORSPolicy | Sequence[CORSPolicy] | None = None,
        *,
        errors: ErrorPolicy | None = None,
        **policy_kwargs: Any,
    ) -> None:
        self.app = app
        self.policies = cors_policies(policy, policy_kwargs)
        #: The policy a refused preflight's 403 is rendered with (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)
        self._single = self.policies[0] if len(self.policies) == 1 and self.policies[0].paths is None else None
        # What appended returns under the single policy, by Origin (which comes from clients: bounded).
        self._suffixes: BoundedCache[bytes | None, _Pairs] = BoundedCache(
            "wsgi.cors.appended", max_entries=_SUFFIXES, max_bytes=_SUFFIXES_BYTES
        )

    def _policy_for(self, path: str) -> CORSPolicy | None:
        for p in self.policies:
            if p.applies_to(path):
                return p
        return None

    def on_request(
        self, environ: dict[str, Any]
    ) -> Answer[WSGIApp] | tuple[CORSPolicy, dict[str, Any], bytes | None] | None:
        """A preflight is answered here; an actual request's context: (the policy, the environ, its Origin)."""
        policy = self._single or self._policy_for(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        if policy is None:
            return None
        origin = _origin(environ)
        acrm = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if origin is not None and acrm is not None and environ.get("REQUEST_METHOD") == "OPTIONS":
            return Answer(partial(self._preflight, policy, origin=origin, acrm=acrm))
        return policy, environ, origin

    def on_response_start(
        self, context: tuple[CORSPolicy, dict[str, Any], bytes | None], status: int, headers: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The response's headers with ``Vary: Origin`` and the CORS answer merged in (a route override wins)."""
        policy, environ, origin = context
        override = environ.get(STATE_KEY)
        if isinstance(override, CORSPolicy):
            policy = override
        raw = policy.actual_raw(origin)
        if not raw and origin is not None and events.listening("cors"):
            _refused(environ, origin)
        return with_cors(headers, text_headers(raw), _VARY_ORIGIN, "access-control-")

    def appended(
        self, context: tuple[CORSPolicy, dict[str, Any], bytes | None], status: int, headers: Sequence[tuple[str, str]]
    ) -> Sequence[tuple[str, str]] | None:
        """``Vary: Origin`` and the CORS answer, for a response holding neither (None under a route's own CORS
        policy)."""
        policy, environ, origin = context
        if STATE_KEY in environ:
            return None
        if policy is not self._single:
            found: _Pairs = (_VARY_ORIGIN, *text_headers(policy.actual_raw(origin)))
        else:
            cached = self._suffixes.get(origin)
            if cached is None:
                cached = (_VARY_ORIGIN, *text_headers(policy.actual_raw(origin)))
                self._suffixes.put(origin, cached)
            found = cached
        if len(found) == 1 and origin is not None and events.listening("cors"):  # Vary alone: a refused origin
            _refused(environ, origin)
        return found

    def _preflight(
        self, policy: CORSPolicy, environ: dict[str, Any], start_response: StartResponse, *, origin: bytes, acrm: str
    ) -> Iterable[bytes]:
        pna = environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK", "").strip().lower() == "true"
        allowed, raw, _reason = policy.preflight_raw(
            origin, acrm, environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"), pna
        )
        vary = merge_vary(None, policy.preflight_vary())
        if not allowed:
            return wsgi_problem(
                start_response,
                403,
                environ=environ,
                headers=[("Vary", vary)],
                detail="CORS preflight refused.",
                policy=self.errors,
            )
        headers = text_headers(raw)
        headers.append(("Vary", vary))
        headers.append(("Content-Length", "0"))
        status = "204 No Content" if policy.preflight_status == 204 else "200 OK"
        start_response(status, headers)
        return [b""]
