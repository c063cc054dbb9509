"""A CORS policy's settings, checked and compiled: what ``CORSPolicy.__init__`` refuses, and what it builds.

What lives here: the refusals of unsafe combinations (``"*"`` or ``"null"`` with credentials, ``"*"`` with other
origins, ``expose_headers=["*"]`` with credentials), the checks of names, ``max_age``, ``preflight_status`` and
``paths``, and the compiled forms: exact origins, the regex (checked for its reach), path prefixes and
patterns, and the header pairs every response or preflight of the policy shares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .._http import HTTP_TOKEN_RE
from ..exceptions import ConfigurationError
from ._decision import RawHeaders
from ._origin import Origin, config_origin
from ._patterns import HostPattern, config_pattern
from ._regex import check_regex, check_regex_reach

__all__ = [
    "check_origin_settings",
    "check_response_settings",
    "compile_paths",
    "compile_patterns",
    "compile_regex",
    "exact_origins",
    "header_names",
    "method_names",
    "names",
    "null_answer",
    "preflight_common",
    "simple_tail",
]

# "**" any path below, "*" one path segment; everything else literal.
_GLOBS = {"**": ".*", "*": "[^/]*"}


def check_origin_settings(
    origins: Sequence[str], patterns: Sequence[str], regex: str | None, credentials: object
) -> None:
    """Refuse the origin settings that are unsafe together (``ConfigurationError``).

    Example::

        check_origin_settings(["*"], [], None, True)   # ConfigurationError: '*' with credentials
    """
    if not isinstance(credentials, bool):
        raise ConfigurationError("CORS allow_credentials must be True or False.")
    if "*" in origins:
        _check_any_origin(origins, patterns, regex, credentials)
    _check_null(origins, credentials)


def _check_null(origins: Sequence[str], credentials: bool) -> None:
    if "null" in origins and credentials:
        raise ConfigurationError(
            "CORS origin 'null' with allow_credentials=True: sandboxed iframes and data: URLs of any site"
            " send 'null', so this admits everyone with the user's credentials."
        )


def _check_any_origin(origins: Sequence[str], patterns: Sequence[str], regex: str | None, credentials: bool) -> None:
    if credentials:
        raise ConfigurationError(
            "CORS allow_origins=['*'] with allow_credentials=True would let any site read credentialed"
            " responses; list the origins instead."
        )
    if _others_listed(origins, patterns, regex):
        raise ConfigurationError("CORS allow_origins=['*'] already allows every origin; list nothing else.")


def _others_listed(origins: Sequence[str], patterns: Sequence[str], regex: str | None) -> bool:
    """True when origins other than ``"*"`` are set: another origin, a pattern or a regex."""
    return bool(len(origins) > 1 or patterns or regex)


def exact_origins(origins: Iterable[str]) -> dict[Origin, str]:
    """The listed origins (``"*"`` and ``"null"`` aside), parsed, each with its serialised form.

    Example::

        >>> exact_origins(["https://Example.com:443"])
        {Origin(scheme='https', host='example.com', port=443): 'https://example.com'}
    """
    return {origin: origin.serialize() for origin in map(config_origin, _listed(origins))}


def _listed(origins: Iterable[str]) -> list[str]:
    """The origins to parse: all but the ``"*"`` and ``"null"`` keywords."""
    return [text for text in origins if text not in ("*", "null")]


def compile_regex(text: str | None, credentials: bool) -> re.Pattern[str] | None:
    """The compiled ``allow_origin_regex`` (None without one), checked for dots and for its reach.

    Example::

        >>> compile_regex(None, False) is None
        True
    """
    if text is None:
        return None
    regex = check_regex(text)
    check_regex_reach(text, regex, credentials)
    return regex


def names(values: Iterable[str], what: str) -> tuple[str, ...]:
    """Method or header names (``"*"`` allowed), each an HTTP token, duplicates dropped, order kept.

    Example::

        >>> names(["GET", "POST", "GET"], "allow_methods")
        ('GET', 'POST')
    """
    if isinstance(values, str):
        raise ConfigurationError(f"CORS {what} must be a list of strings, not one string.")
    for value in values:
        _check_name(value, what)
    return tuple(dict.fromkeys(values))


def method_names(values: Iterable[str]) -> tuple[str, ...]:
    """The ``allow_methods`` setting: checked names, upper case.

    Example::

        >>> method_names(["get", "PUT"])
        ('GET', 'PUT')
    """
    return tuple(m.upper() for m in names(values, "allow_methods"))


def header_names(values: Iterable[str]) -> tuple[str, ...]:
    """The ``allow_headers`` setting: checked names, lower case.

    Example::

        >>> header_names(["X-Request-Id"])
        ('x-request-id',)
    """
    return tuple(h.lower() for h in names(values, "allow_headers"))


def compile_patterns(patterns: Iterable[str], credentials: bool) -> tuple[HostPattern, ...]:
    """The ``allow_origin_patterns`` setting compiled, each checked for its reach.

    Example::

        >>> compile_patterns(["https://*.example.com"], False)
        (HostPattern(scheme='https', suffix='.example.com', port=443, any_port=False),)
    """
    return tuple(config_pattern(p, credentials) for p in patterns)


def null_answer(allow_null: bool, allow_all: bool) -> str | None:
    """What a ``null`` origin gets: ``"null"`` when listed, ``"*"`` from a policy allowing any origin, else None.

    Example::

        >>> null_answer(False, True)
        '*'
    """
    if allow_null:
        return "null"
    return "*" if allow_all else None


def _check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or (value != "*" and HTTP_TOKEN_RE.fullmatch(value) is None):
        raise ConfigurationError(f"CORS {what}: {value!r} is not a valid name.")


def check_response_settings(
    expose: Sequence[str], credentials: bool, max_age: object, preflight_status: object
) -> None:
    """Refuse ``expose_headers=["*"]`` with credentials, a bad ``max_age`` or ``preflight_status``.

    Example::

        check_response_settings(["*"], True, 600, 204)   # ConfigurationError: browsers take '*' literally
    """
    _check_expose(expose, credentials)
    _check_max_age(max_age)
    _check_preflight_status(preflight_status)


def _check_expose(expose: Sequence[str], credentials: bool) -> None:
    if "*" in expose and credentials:
        raise ConfigurationError(
            "CORS expose_headers=['*'] is taken literally by browsers on credentialed requests; list names."
        )


def _check_max_age(max_age: object) -> None:
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigurationError(f"CORS max_age must be a whole number of seconds >= 0, got {max_age!r}.")


def _check_preflight_status(preflight_status: object) -> None:
    if preflight_status not in (200, 204):
        raise ConfigurationError("CORS preflight_status must be 200 or 204.")


def _compile_path(spec: str) -> re.Pattern[str] | str:
    _check_path(spec)
    # Without a wildcard: a prefix at a segment boundary ("/" -> "" covers everything).
    return spec.rstrip("/") if "*" not in spec else _glob(spec)


def _check_path(spec: object) -> None:
    if not isinstance(spec, str) or not spec.startswith("/"):
        raise ConfigurationError(f"CORS path {spec!r} must start with '/'.")


def _glob(spec: str) -> re.Pattern[str]:
    """A path pattern as a regex: ``**`` any path below, ``*`` one path segment, everything else literal."""
    return re.compile("".join(map(_glob_part, re.split(r"(\*\*|\*)", spec))))


def _glob_part(part: str) -> str:
    return _GLOBS[part] if part in _GLOBS else re.escape(part)


def compile_paths(paths: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[re.Pattern[str], ...]]:
    """``(path prefixes, path patterns)`` of the ``paths`` setting (both empty without it).

    Example::

        >>> compile_paths(["/api/", "/v*/public/**"])
        (('/api',), (re.compile('/v[^/]*/public/.*'),))
    """
    prefixes: list[str] = []
    patterns: list[re.Pattern[str]] = []
    for spec in paths or ():
        compiled = _compile_path(spec)
        if isinstance(compiled, str):
            prefixes.append(compiled)
        else:
            patterns.append(compiled)
    return tuple(prefixes), tuple(patterns)


def simple_tail(credentials: bool, expose: Sequence[str]) -> RawHeaders:
    """The pairs after ``Access-Control-Allow-Origin`` on every allowed actual response.

    Example::

        >>> simple_tail(True, ["x-request-id"])
        ((b'access-control-allow-credentials', b'true'), (b'access-control-expose-headers', b'x-request-id'))
    """
    tail: list[tuple[bytes, bytes]] = []
    if credentials:
        tail.append((b"access-control-allow-credentials", b"true"))
    if expose:
        tail.append((b"access-control-expose-headers", ", ".join(expose).encode("latin-1")))
    return tuple(tail)


def preflight_common(tail: RawHeaders, any_method: bool, methods: Sequence[str], max_age: int) -> RawHeaders:
    """The pairs after ``Access-Control-Allow-Origin`` on every allowed preflight: the first pair of the
    actual responses' ``tail``, the listed methods (unless any is allowed) and ``Access-Control-Max-Age``.

    Example::

        >>> preflight_common((), False, ["GET", "PUT"], 600)
        ((b'access-control-allow-methods', b'GET, PUT'), (b'access-control-max-age', b'600'))
    """
    common = list(tail[:1])
    if not any_method:
        common.append((b"access-control-allow-methods", ", ".join(methods).encode("latin-1")))
    common.append((b"access-control-max-age", str(max_age).encode("latin-1")))
    return tuple(common)
