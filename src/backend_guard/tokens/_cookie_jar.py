"""Cookies as plain data: reading one from ``Cookie`` header values, writing ``Set-Cookie`` on any framework's response.

What lives here: :func:`cookie_value` (the decision on what a request's ``Cookie`` fields say about one name:
absent, one value, or an ambiguous duplicate; :func:`cookie_values` lists them all), :class:`CookieSpec` (one
cookie to set or clear, rendered as a ``Set-Cookie`` value) and :func:`write_cookies` (putting specs on a
Starlette/FastAPI, Flask (werkzeug) or Django response, through its framework's adapter). No token is decided
here: :mod:`backend_guard.tokens._cookies` says which cookies carry which token.

The ``Cookie`` header is parsed here rather than by the framework: Starlette, werkzeug and Django each parse it
differently (duplicates: first or last wins; odd bytes: dropped or kept), and an authentication decision must
not depend on which one runs. Nothing here raises on any header value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._adapter import response_adapter
from .._check import check_str
from ..exceptions import ConfigurationError, InvalidToken

__all__ = [
    "CookieSpec",
    "check_cookie_options",
    "cookie_value",
    "cookie_values",
    "response_framework",
    "write_cookies",
]

#: The bytes a cookie's name may hold (RFC 6265 ``token``); our names are checked against it at start-up.
_NAME_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

#: What a browser trims around a cookie's name and value: spaces and tabs only (WSP, RFC 6265 section 5.2). Not
#: ``str.strip()``'s set: it also trims NBSP, NEL and other control or Unicode spaces, which a browser keeps, so
#: a sibling subdomain's ``"\xa0__Host-access"`` (no prefix to the browser, so settable with ``Domain``) would be
#: read as ``__Host-access``.
_TRIMMED = " \t"


def is_cookie_name(name: str) -> bool:
    """True when ``name`` can be a cookie's name (a non-empty RFC 6265 token).

    Example::

        >>> is_cookie_name("__Host-access"), is_cookie_name("a b")
        (True, False)
    """
    return bool(name) and all(ch in _NAME_CHARS for ch in name)


def cookie_value(fields: Sequence[str], name: str) -> str | None:
    """The value of cookie ``name`` in a request's ``Cookie`` header fields; None when it is not there.

    The same name sent twice with different values is refused (InvalidToken, a 401): a sibling subdomain can
    plant a second cookie of a ``__Secure-`` name (cookie tossing) and the browser sends both, in an order the
    server cannot trust. Pairs without ``=`` and empty pieces are skipped, as browsers do.

    Example::

        >>> cookie_value(["theme=dark; __Host-access=eyJ.x.y"], "__Host-access")
        'eyJ.x.y'
    """
    found: str | None = None
    for value in _values(fields, name):
        if found is not None and value != found:
            raise InvalidToken("The request carries the token cookie more than once.")
        found = value
    return found


def cookie_values(fields: Sequence[str], name: str, limit: int) -> list[str]:
    """The distinct values of cookie ``name`` in a request's ``Cookie`` header fields, in arrival order, at most
    ``limit`` of them (logout ends the login of each: a tossed duplicate must not hide the user's own).

    Example::

        >>> cookie_values(["__Secure-refresh=a; __Secure-refresh=b; __Secure-refresh=a"], "__Secure-refresh", 8)
        ['a', 'b']
    """
    found: list[str] = []
    for value in _values(fields, name):
        if value not in found:
            found.append(value)
            if len(found) >= limit:
                break
    return found


def _values(fields: Iterable[str], name: str) -> Iterator[str]:
    """Every value of cookie ``name`` in the header fields, in arrival order (HTTP/2 may split ``Cookie`` into
    several fields); pieces without ``=`` are skipped."""
    for field in fields:
        for pair in field.split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip(_TRIMMED) == name:
                yield value.strip(_TRIMMED)


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """One cookie to set (or, with ``value=""`` and ``max_age=0``, to clear); always ``Secure`` and ``HttpOnly``.

    Example::

        >>> CookieSpec("__Host-access", "eyJ.x.y", 900, "/", "Lax").header()
        '__Host-access=eyJ.x.y; Max-Age=900; Path=/; Secure; HttpOnly; SameSite=Lax'
    """

    name: str
    value: str = dataclasses.field(repr=False)  # a token: never in a log by accident
    max_age: int
    path: str
    samesite: Literal["Lax", "Strict"]

    def header(self) -> str:
        """The ``Set-Cookie`` value (no ``Domain``: the cookie stays on the host that set it)."""
        return (
            f"{self.name}={self.value}; Max-Age={self.max_age}; Path={self.path}; Secure; HttpOnly; "
            f"SameSite={self.samesite}"
        )

    def cleared(self) -> CookieSpec:
        """The spec that removes this cookie: same name and path, empty value, ``Max-Age=0``."""
        return CookieSpec(self.name, "", 0, self.path, self.samesite)


def response_framework(response: Any) -> str:
    """``"starlette"``, ``"flask"`` or ``"django"`` for a response object of that framework (TypeError otherwise).

    Example::

        response_framework(JSONResponse({}))   # "starlette"
    """
    return response_adapter(response).name


def write_cookies(response: Any, specs: Sequence[CookieSpec]) -> None:
    """Add one ``Set-Cookie`` field per spec to ``response`` (Starlette/FastAPI, Flask or Django).

    Each framework keeps repeated ``Set-Cookie`` fields its own way (Starlette in ``raw_headers``, werkzeug with
    ``headers.add``, Django only through ``response.cookies``): its adapter (``integrations/_adapter_*.py``)
    writes them.

    Example::

        write_cookies(response, [CookieSpec("__Host-access", token, 900, "/", "Lax")])
    """
    response_adapter(response).set_cookies(response, specs)


# -- the options TokenCookies and the token_cookies settings check, before any token manager exists --------

_ACCEPT = ("header", "cookie", "both")
_PATH_FORBIDDEN = frozenset(';,"\\ ')


def check_cookie_options(refresh_path: object, accept: object, access_cookie: object, refresh_cookie: object) -> None:
    """Refuse (ConfigurationError naming the option) a refresh path or cookie name :class:`TokenCookies` would
    refuse: what the ``token_cookies`` settings check at start-up, before any token manager exists.

    Example::

        >>> check_cookie_options("/auth/refresh", "both", "__Host-access", "__Secure-refresh")
    """
    if accept not in _ACCEPT:
        raise ConfigurationError(f"accept must be one of {', '.join(_ACCEPT)}.")
    _checked_path(refresh_path)
    _checked_name("access_cookie", access_cookie, "__Host-")
    _checked_name("refresh_cookie", refresh_cookie, "__Secure-")


def _checked_path(path: object) -> str:
    text = check_str("refresh_path", path)
    if not text.startswith("/") or any(ch in _PATH_FORBIDDEN or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in text):
        raise ConfigurationError("refresh_path must be a path starting with '/' (no ';', ',', quotes or spaces).")
    if text.strip("/") == "":
        # Path=/ would send the refresh token with every request of the site, where only the refresh route needs it
        raise ConfigurationError("refresh_path must name the refresh route (e.g. '/auth/refresh'), not '/'.")
    return text


def _checked_name(arg: str, name: object, prefix: str) -> str:
    text = check_str(arg, name)
    if not text.startswith(prefix) or not is_cookie_name(text):
        raise ConfigurationError(f"{arg} must be a cookie name starting with {prefix!r}.")
    return text
