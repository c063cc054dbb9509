"""Per-request CSP nonces: made lazily, kept on the request, read back by the middleware.

This module owns where a nonce comes from and where it lives. :func:`csp_nonce` makes one (144 bits from
``os.urandom``, the CSPRNG behind :mod:`secrets`) the first time a request asks for it and keeps it on the
request: ``scope["state"]`` for ASGI, the WSGI environ, and also where the framework's templates look (Flask's
``g.csp_nonce``, Django's ``request.csp_nonce``). :func:`peek_nonce` reads it back without making one, so the
middleware adds a nonce to the CSP only of the responses that used it. A request object's framework is known
to its adapter (:mod:`backend_guard._adapter`): nothing here names or imports a framework.
"""

from __future__ import annotations

from binascii import b2a_base64 as _b2a_base64
from collections.abc import Mapping, MutableMapping
from os import urandom as _urandom
from typing import Any, Final

from .._adapter import FrameworkAdapter, adapter_of, context_request

__all__ = ["ENVIRON_NONCE_KEY", "NONCE_KEY", "csp_nonce", "peek_nonce"]

#: Where the lazily made nonce is kept: ``scope["state"][NONCE_KEY]`` (ASGI) and ``environ[NONCE_KEY]`` (WSGI).
NONCE_KEY: Final = "backend_guard.csp_nonce"
ENVIRON_NONCE_KEY: Final = NONCE_KEY

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _new_nonce() -> str:
    # What secrets.token_urlsafe(18) returns (144 bits from os.urandom, 24 URL-safe base64 characters, no
    # padding since 18 bytes encode exactly; a valid CSP base64-value), made with fewer intermediate steps.
    return _b2a_base64(_urandom(18), newline=False).translate(_URLSAFE).decode("ascii")


def _is_scope(carrier: Mapping[str, Any]) -> bool:
    """True for an ASGI scope (it has a ``type``), false for a WSGI environ (it has ``REQUEST_METHOD``)."""
    return "type" in carrier and "REQUEST_METHOD" not in carrier


def _scope_state(scope: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


def _nonce_in(store: MutableMapping[str, Any]) -> str:
    nonce = store.get(NONCE_KEY)
    if not isinstance(nonce, str):
        nonce = store[NONCE_KEY] = _new_nonce()
    return nonce


def _mapping_nonce(carrier: MutableMapping[str, Any]) -> str:
    return _nonce_in(_scope_state(carrier) if _is_scope(carrier) else carrier)


def _request_nonce(request: Any, adapter: FrameworkAdapter) -> str:
    """The nonce of a framework's request: kept in its ASGI scope's state or its WSGI environ (Django's
    ``META``), and offered where the framework's templates look (Flask's ``g``, Django's request)."""
    scope = adapter.scope_of(request)
    nonce = _nonce_in(_scope_state(scope) if isinstance(scope, MutableMapping) else adapter.environ_of(request))
    adapter.offer_nonce(request, nonce)
    return nonce


def _other_nonce(request: Any) -> str:
    """:func:`csp_nonce` for anything but a plain ASGI scope dict (its hot path)."""
    if request is None:
        request, adapter = context_request()
        if adapter is None:
            raise RuntimeError("csp_nonce() without a request works only inside a Flask request.")
        return _request_nonce(request, adapter)
    if isinstance(request, MutableMapping):
        return _mapping_nonce(request)
    adapter = adapter_of(request)
    if adapter is None:
        raise TypeError(f"csp_nonce() needs a request, an ASGI scope or a WSGI environ, not {type(request).__name__}.")
    return _request_nonce(request, adapter)


def _carrier_mapping(carrier: Any) -> Mapping[str, Any] | None:
    """The ASGI scope or WSGI environ (Django's ``META``) a request object carries, if any."""
    scope = getattr(carrier, "scope", None)
    if isinstance(scope, Mapping):
        return scope
    environ = getattr(carrier, "environ", None)
    if environ is None:
        environ = getattr(carrier, "META", None)
    return environ if isinstance(environ, Mapping) else None


def _peek_mapping(carrier: Mapping[str, Any]) -> str | None:
    if _is_scope(carrier):
        state = carrier.get("state")
        value = state.get(NONCE_KEY) if state else None
    else:
        value = carrier.get(NONCE_KEY)
    return value if isinstance(value, str) else None


def peek_nonce(carrier: Any) -> str | None:
    """This request's nonce if one was made already (never makes one): ASGI scope, WSGI environ or request.

    Example::

        peek_nonce(scope)   # None until something called csp_nonce(...)
    """
    if not isinstance(carrier, Mapping):
        carrier = _carrier_mapping(carrier)
        if carrier is None:
            return None
    return _peek_mapping(carrier)


def csp_nonce(request: Any = None) -> str:
    """This response's CSP nonce, made on first use (144 bits from ``os.urandom``) and then reused.

    Accepts a Starlette/FastAPI request, a Django request, an ASGI scope or a WSGI environ; in Flask call it
    with no argument inside a request (it is also set as ``g.csp_nonce``). Django's request also gets it as
    ``request.csp_nonce``. The security-headers middleware adds it to the CSP of this response only.

    Example::

        @app.get("/")
        async def home(request: Request):
            return templates.TemplateResponse(request, "home.html", {"nonce": bg.csp_nonce(request)})
    """
    if type(request) is dict and "type" in request and "REQUEST_METHOD" not in request:  # an ASGI scope (hot)
        state = request.get("state")
        if state is None:
            state = request["state"] = {}
        found = state.get(NONCE_KEY)
        if isinstance(found, str):
            return found
        made = state[NONCE_KEY] = _new_nonce()
        return made
    return _other_nonce(request)
