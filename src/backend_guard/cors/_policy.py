"""The CORS policy: built once from checked settings, then asked per request (sans-IO).

What lives here: :class:`CORSPolicy`, its compiled state, and its per-request decisions: whether it covers a
path, which value an allowed ``Origin`` gets (exact origins, then patterns, then the regex, all over the parsed
origin), and what an actual response or a preflight gets. The shells only read headers, ask, and write back.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any, TypeGuard

from .. import events
from .._cache import BoundedCache
from .._check import check_bool, check_int, check_str, check_strs, optional
from .._http import HTTP_TOKEN_RE
from ..exceptions import ConfigurationError
from ._decision import ACTUAL_VARY, NOTHING, PNA_VARY, PREFLIGHT_VARY, CORSDecision, RawHeaders, title
from ._origin import MAX_ORIGIN_LENGTH, Origin, parse_origin
from ._patterns import HostPattern
from ._settings import (
    check_origin_settings,
    check_response_settings,
    compile_paths,
    compile_patterns,
    compile_regex,
    exact_origins,
    header_names,
    method_names,
    names,
    null_answer,
    preflight_common,
    simple_tail,
)

__all__ = ["MAX_REQUEST_HEADERS_LENGTH", "SAFELISTED_HEADERS", "SAFELISTED_METHODS", "CORSPolicy"]

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# Browsers send these without a preflight for simple values; a JSON body still asks for content-type, so they
# are always allowed when requested (as Starlette and django-cors-headers do).
SAFELISTED_HEADERS = ("accept", "accept-language", "content-language", "content-type")
MAX_REQUEST_HEADERS_LENGTH = 4096
_CACHE_SIZE = 1024
_CACHE_BYTES = 1 << 20  # origins are at most 512 characters: 1024 of them fit


def _under(path: str, prefix: str) -> bool:
    """True when ``path`` is ``prefix`` or below it (at a segment boundary)."""
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


class CORSPolicy:
    """A CORS policy, validated and compiled when built (``ConfigurationError`` on unsafe settings).

    ``allow_origins`` are exact origins (``"*"`` for any, ``"null"`` only on purpose); ``allow_origin_patterns``
    are ``"https://*.example.com"`` (any subdomain, never the bare domain; ``:*`` for any port);
    ``allow_origin_regex`` is a full-match regex over the normalised origin with no unescaped dots.
    ``allow_methods``/``allow_headers`` may be ``["*"]`` (any method; any header but ``Authorization``, which
    must be listed). ``paths`` limits the policy to path prefixes (``"/api"``) or patterns (``"/v*/public/**"``);
    None covers every path. Frozen: build a new one to change it.

    Example::

        policy = bg.CORSPolicy(
            allow_origins=["https://app.example.com"],
            allow_origin_patterns=["https://*.preview.example.com"],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "x-request-id"],
            allow_credentials=True,
            paths=["/api"],
        )
        policy.is_allowed_origin("https://app.example.com")        # True
        policy.is_allowed_origin("https://app.example.com.evil.net")  # False
    """

    __slots__ = (
        "_actual_cache",
        "_allow_all",
        "_allowed_headers",
        "_any_header",
        "_any_method",
        "_exact",
        "_methods",
        "_null_answer",
        "_path_patterns",
        "_path_prefixes",
        "_patterns",
        "_preflight_common",
        "_regex",
        "_simple_tail",
        "allow_credentials",
        "allow_headers",
        "allow_methods",
        "allow_null",
        "allow_origin_patterns",
        "allow_origin_regex",
        "allow_origins",
        "allow_private_network",
        "expose_headers",
        "max_age",
        "paths",
        "preflight_status",
    )

    allow_origins: tuple[str, ...]
    allow_origin_patterns: tuple[str, ...]
    allow_origin_regex: str | None
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    allow_credentials: bool
    max_age: int
    allow_private_network: bool
    allow_null: bool
    paths: tuple[str, ...] | None
    preflight_status: int
    _actual_cache: BoundedCache[bytes, RawHeaders]
    _allow_all: bool
    _allowed_headers: frozenset[str]
    _any_header: bool
    _any_method: bool
    _exact: dict[Origin, str]
    _methods: frozenset[str]
    _null_answer: str | None
    _path_patterns: tuple[re.Pattern[str], ...]
    _path_prefixes: tuple[str, ...]
    _patterns: tuple[HostPattern, ...]
    _preflight_common: RawHeaders
    _regex: re.Pattern[str] | None
    _simple_tail: RawHeaders

    def __init__(
        self,
        allow_origins: Sequence[str] = (),
        allow_origin_patterns: Sequence[str] = (),
        allow_methods: Sequence[str] = ("GET", "HEAD", "POST"),
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        max_age: int = 600,
        allow_private_network: bool = False,
        *,
        allow_origin_regex: str | None = None,
        paths: Sequence[str] | None = None,
        preflight_status: int = 204,
    ) -> None:
        allow_origins = check_strs("allow_origins", allow_origins)
        allow_origin_patterns = check_strs("allow_origin_patterns", allow_origin_patterns)
        allow_methods = check_strs("allow_methods", allow_methods)
        allow_headers = check_strs("allow_headers", allow_headers)
        expose_headers = check_strs("expose_headers", expose_headers)
        check_bool("allow_credentials", allow_credentials)
        check_int("max_age", max_age, min=0)
        check_bool("allow_private_network", allow_private_network)
        optional(check_str, "allow_origin_regex", allow_origin_regex)
        paths = optional(check_strs, "paths", paths)
        check_int("preflight_status", preflight_status)
        origins = tuple(allow_origins)
        check_origin_settings(origins, allow_origin_patterns, allow_origin_regex, allow_credentials)
        exact = exact_origins(origins)
        patterns = compile_patterns(allow_origin_patterns, allow_credentials)
        regex = compile_regex(allow_origin_regex, allow_credentials)
        methods = method_names(allow_methods)
        headers = header_names(allow_headers)
        expose = names(expose_headers, "expose_headers")
        check_response_settings(expose, allow_credentials, max_age, preflight_status)
        path_prefixes, path_patterns = compile_paths(paths)

        s = object.__setattr__
        s(self, "allow_origins", origins)
        s(self, "allow_origin_patterns", tuple(allow_origin_patterns))
        s(self, "allow_origin_regex", allow_origin_regex)
        s(self, "allow_methods", methods)
        s(self, "allow_headers", headers)
        s(self, "expose_headers", expose)
        s(self, "allow_credentials", allow_credentials)
        s(self, "max_age", max_age)
        s(self, "allow_private_network", bool(allow_private_network))
        s(self, "allow_null", "null" in origins)
        s(self, "paths", tuple(paths) if paths is not None else None)
        s(self, "preflight_status", preflight_status)
        s(self, "_allow_all", "*" in origins)
        s(self, "_null_answer", null_answer(self.allow_null, self._allow_all))
        s(self, "_exact", exact)
        s(self, "_patterns", patterns)
        s(self, "_regex", regex)
        s(self, "_methods", frozenset(methods) | SAFELISTED_METHODS)
        s(self, "_any_method", "*" in methods)
        s(self, "_allowed_headers", frozenset(headers) | frozenset(SAFELISTED_HEADERS))
        s(self, "_any_header", "*" in headers)
        s(self, "_path_prefixes", path_prefixes)
        s(self, "_path_patterns", path_patterns)
        s(self, "_simple_tail", simple_tail(allow_credentials, expose))
        s(self, "_preflight_common", preflight_common(self._simple_tail, self._any_method, methods, max_age))
        s(self, "_actual_cache", BoundedCache("cors.actual", max_entries=_CACHE_SIZE, max_bytes=_CACHE_BYTES))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CORSPolicy is frozen; build a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CORSPolicy is frozen; build a new one")

    def __repr__(self) -> str:
        return (
            f"CORSPolicy(allow_origins={list(self.allow_origins)!r}, "
            f"allow_origin_patterns={list(self.allow_origin_patterns)!r}, allow_methods={list(self.allow_methods)!r}, "
            f"allow_credentials={self.allow_credentials!r}, paths={self.paths!r})"
        )

    # -- matching ---------------------------------------------------------------------------------------

    def applies_to(self, path: str) -> bool:
        """True when this policy covers ``path`` (always, without ``paths``).

        Example::

            >>> CORSPolicy(allow_origins=["https://a.example"], paths=["/api"]).applies_to("/api/users")
            True
        """
        return self.paths is None or self._covers(path)

    def _covers(self, path: str) -> bool:
        """True when one of the ``paths`` prefixes or patterns covers ``path``."""
        return any(_under(path, prefix) for prefix in self._path_prefixes) or any(
            p.fullmatch(path) for p in self._path_patterns
        )

    def match_origin(self, origin: str | bytes | None) -> str | None:
        """The value for ``Access-Control-Allow-Origin`` when ``origin`` is allowed, else None.

        ``"*"`` for a policy allowing any origin; otherwise the normalised origin (``"null"`` when listed).

        Example::

            >>> CORSPolicy(allow_origins=["https://example.com"]).match_origin("https://example.com:443")
            'https://example.com'
        """
        if origin is None:
            return None
        if origin == (b"null" if isinstance(origin, bytes) else "null"):  # never bytes == str (python -bb)
            return self._null_answer
        parsed = parse_origin(origin)
        if parsed is None:
            return None
        if self._allow_all:
            return "*"
        found = self._exact.get(parsed)
        return found if found is not None else self._match_wider(parsed)

    def _match_wider(self, parsed: Origin) -> str | None:
        """The serialised origin when a pattern or the regex admits it (not listed exactly), else None."""
        for pattern in self._patterns:
            if pattern.matches(parsed):
                return parsed.serialize()
        if self._regex is None:
            return None
        text = parsed.serialize()
        return text if self._regex.fullmatch(text) else None

    def is_allowed_origin(self, origin: str | bytes | None) -> bool:
        """True when ``origin`` (a request's ``Origin`` value) is allowed by this policy.

        Example::

            >>> CORSPolicy(allow_origin_patterns=["https://*.example.com"]).is_allowed_origin("https://example.com")
            False
        """
        return self.match_origin(origin) is not None

    # -- decisions -----------------------------------------------------------------------------------------

    def actual_raw(self, origin: bytes | None) -> RawHeaders:
        """``Access-Control-*`` header pairs (lower-case bytes) for an actual response; () when not allowed.

        The shells' hot path: the answer for an origin is computed once and cached (bounded).

        Example::

            policy.actual_raw(b"https://app.example.com")
            # ((b'access-control-allow-origin', b'https://app.example.com'),)
        """
        if origin is None:
            return NOTHING
        cache = self._actual_cache
        found = cache.get(origin)
        return found if found is not None else self._actual_uncached(origin)

    def _actual_uncached(self, origin: bytes) -> RawHeaders:
        """:meth:`actual_raw` computed, and remembered for an origin of a plausible length."""
        value = self.match_origin(origin)
        result: RawHeaders = (
            NOTHING if value is None else ((b"access-control-allow-origin", value.encode("ascii")), *self._simple_tail)
        )
        if len(origin) <= MAX_ORIGIN_LENGTH:
            self._actual_cache.put(origin, result)
        return result

    def actual(self, origin: str | None) -> CORSDecision:
        """The decision for an actual (non-preflight) response to a request with this ``Origin``.

        Example::

            d = policy.actual("https://app.example.com")
            d.allowed, d.headers, d.vary   # True, (("Access-Control-Allow-Origin", ...), ...), ("Origin",)
        """
        raw = self.actual_raw(origin.encode("latin-1", "replace") if origin is not None else None)
        return CORSDecision(allowed=bool(raw), preflight=False, headers=title(raw), vary=ACTUAL_VARY)

    def preflight_vary(self) -> tuple[str, ...]:
        """Names a preflight response varies on (the private-network one only when enabled)."""
        return (*PREFLIGHT_VARY, PNA_VARY) if self.allow_private_network else PREFLIGHT_VARY

    def preflight_raw(
        self,
        origin: str | bytes | None,
        method: str | bytes | None,
        request_headers: str | bytes | None = None,
        private_network: bool = False,
    ) -> tuple[bool, RawHeaders, str | None]:
        """``(allowed, Access-Control-* pairs, refusal reason)`` for a preflight; the shells' form.

        Example::

            allowed, headers, reason = policy.preflight_raw(b"https://a.example", b"PUT", b"content-type")
        """
        value = self.match_origin(origin)
        if value is None:
            return _refused(origin, "origin")
        if isinstance(method, bytes):
            method = method.decode("latin-1")
        if not self._method_allowed(method):
            return _refused(origin, "method")
        asked = self._asked_headers(request_headers) if request_headers else []
        if asked is None:
            return _refused(origin, "headers")
        return True, self._preflight_headers(value, method, asked, private_network), None

    def _method_allowed(self, method: str | None) -> TypeGuard[str]:
        """True for a method token this policy allows (listed, safelisted, or any under ``["*"]``)."""
        if not method:
            return False
        return HTTP_TOKEN_RE.fullmatch(method) is not None and (self._any_method or method in self._methods)

    def _asked_headers(self, request_headers: str | bytes) -> list[str] | None:
        """The names of ``Access-Control-Request-Headers``, lower-case and once each; None when one is refused
        (not a token, not allowed, or the value too long)."""
        if isinstance(request_headers, bytes):
            request_headers = request_headers.decode("latin-1")
        if len(request_headers) > MAX_REQUEST_HEADERS_LENGTH:
            return None
        asked: list[str] = []
        for item in request_headers.split(","):
            name = item.strip().lower()
            # A repeated name was allowed when first seen; an empty item is no name.
            if name and name not in asked:
                if not self._header_allowed(name):
                    return None
                asked.append(name)
        return asked

    def _header_allowed(self, name: str) -> bool:
        """True for a header name a preflight may ask for: a token, listed or safelisted, or any but
        ``Authorization`` under ``allow_headers=["*"]``."""
        if HTTP_TOKEN_RE.fullmatch(name) is None:
            return False
        return name in self._allowed_headers or (self._any_header and name != "authorization")

    def _preflight_headers(self, value: str, method: str, asked: list[str], private_network: bool) -> RawHeaders:
        out: list[tuple[bytes, bytes]] = [(b"access-control-allow-origin", value.encode("ascii"))]
        out.extend(self._preflight_common)
        if self._any_method:
            out.append((b"access-control-allow-methods", method.encode("latin-1")))
        if asked:
            out.append((b"access-control-allow-headers", ", ".join(asked).encode("latin-1")))
        if private_network and self.allow_private_network:
            out.append((b"access-control-allow-private-network", b"true"))
        return tuple(out)

    def preflight(
        self,
        origin: str | None,
        method: str | None,
        request_headers: str | None = None,
        private_network: bool = False,
    ) -> CORSDecision:
        """The decision for a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``).

        ``request_headers`` is the ``Access-Control-Request-Headers`` value; ``private_network`` whether
        ``Access-Control-Request-Private-Network: true`` was sent. Refused -> ``status`` 403 and no
        ``Access-Control-*`` header at all.

        Example::

            d = policy.preflight("https://app.example.com", "DELETE", "authorization")
            d.status   # 204 (allowed) or 403 (refused)
        """
        allowed, raw, reason = self.preflight_raw(origin, method, request_headers, private_network)
        return CORSDecision(
            allowed=allowed,
            preflight=True,
            headers=title(raw),
            vary=self.preflight_vary(),
            status=self.preflight_status if allowed else 403,
            reason=reason,
        )


_MAX_EVENT_ORIGIN = 256  # an Origin comes from the client: an event shows at most this much of it


def _refused(origin: str | bytes | None, reason: str) -> tuple[bool, RawHeaders, str]:
    """A refused preflight's answer, after publishing ``cors.refused`` (the reason, and the origin on one line,
    cut to 256 characters)."""
    if events.listening("cors"):
        events.emit("cors", "cors.refused", reason=reason, origin=_shown(origin), preflight=True)
    return False, NOTHING, reason


def _shown(origin: str | bytes | None) -> str | None:
    """An Origin as an event shows it: on one line (escaped), at most 256 characters."""
    text = origin.decode("latin-1") if isinstance(origin, bytes) else origin
    return None if text is None else text[:_MAX_EVENT_ORIGIN].encode("unicode_escape").decode("ascii")


def actual_refused(origin: bytes, host: bytes | str | None, fetch_site: bytes | str | None) -> None:
    """Publish ``cors.refused`` (``reason="origin"``, ``preflight=False``) for an actual request whose ``Origin``
    the policy does not allow: its response gets no CORS headers, so a browser withholds it from the page.

    A same-origin request is no CORS request (a browser sends ``Origin`` on a same-origin POST too): none is
    published for ``Sec-Fetch-Site: same-origin`` or an ``Origin`` naming the request's own ``Host``. The shells
    call this only on a refused origin's path, when a callback listens.

    Example::

        actual_refused(b"https://evil.example", b"api.example.com", b"cross-site")
    """
    site = fetch_site.decode("latin-1") if isinstance(fetch_site, bytes) else fetch_site
    if site == "same-origin" or _names_host(origin, host):
        return
    events.emit("cors", "cors.refused", reason="origin", origin=_shown(origin), preflight=False)


def _names_host(origin: bytes, host: bytes | str | None) -> bool:
    """True when ``origin`` is the request's own ``host`` (``name[:port]``, the port left out when default)."""
    parsed = parse_origin(origin)
    if parsed is None or not host:
        return False
    authority = parsed.serialize().partition("://")[2]
    text = (host.decode("latin-1") if isinstance(host, bytes) else host).strip().lower().rstrip(".")
    return text in (authority, f"{authority}:{parsed.port}")


def cors_policies(policy: CORSPolicy | Sequence[CORSPolicy] | None, kwargs: Any) -> tuple[CORSPolicy, ...]:
    """The policies a CORS shell (ASGI or WSGI) applies: ``policy`` (one or a list), or one built from ``kwargs``.

    Example::

        cors_policies(None, {"allow_origins": ["https://a.example"]})   # (CORSPolicy(...),)
    """
    if kwargs:
        _check_keywords(kwargs)
    if policy is None:
        if not kwargs:
            raise ConfigurationError("CORSMiddleware needs policy=CORSPolicy(...) (or CORSPolicy keyword arguments).")
        return (CORSPolicy(**kwargs),)
    if kwargs:
        raise ConfigurationError("CORSMiddleware takes either policy= or CORSPolicy keyword arguments, not both.")
    if not isinstance(policy, (CORSPolicy, list, tuple)):
        raise ConfigurationError(
            f"CORSMiddleware policy must be a CORSPolicy or a list of them, not {type(policy).__name__}."
        )
    policies = (policy,) if isinstance(policy, CORSPolicy) else tuple(policy)
    if not policies or not all(isinstance(p, CORSPolicy) for p in policies):
        raise ConfigurationError("CORSMiddleware policy must be a CORSPolicy or a non-empty list of them.")
    return policies


def _check_keywords(kwargs: Any) -> None:
    """Refuse a keyword that is no CORSPolicy argument, naming it and every accepted one (a bare
    ``CORSPolicy.__init__() got an unexpected keyword argument`` names a class the caller never called)."""
    accepted = list(inspect.signature(CORSPolicy).parameters)
    unknown = [name for name in kwargs if name not in accepted]
    if unknown:
        raise ConfigurationError(
            f"CORSMiddleware got an unexpected keyword argument {unknown[0]!r}; it takes policy= (a CORSPolicy or a"
            f" list of them), errors=, or CORSPolicy's keyword arguments: {', '.join(accepted)}."
        )
