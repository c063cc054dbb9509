"""Trusted origins: the other origins whose unsafe requests pass (a separate front end, an admin site).

What lives here: :class:`TrustedOrigins`, built once from the setting and asked per request. Configured values
are read exactly as CORS reads its origins (``backend_guard.cors``'s ``config_origin`` and ``config_pattern``:
IDNA hosts, default ports, no path or userinfo; ``https://*.example.com`` for any subdomain, refused over a
public suffix), and a request's ``Origin`` is parsed by the same strict grammar (``parse_origin``) and compared
as ``(scheme, host, port)``, never as a string prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._check import check_strs
from ..cors._origin import Origin, config_origin, parse_origin
from ..cors._patterns import HostPattern, config_pattern
from ..exceptions import ConfigurationError

__all__ = ["TrustedOrigins", "single_origin"]

_SETTING = "CrossOriginProtection trusted_origins"


class TrustedOrigins:
    """The compiled ``trusted_origins``: exact origins and subdomain patterns.

    Example::

        >>> trusted = TrustedOrigins(["https://admin.example.com", "https://*.example.net"])
        >>> trusted.allows(["https://admin.example.com:443"]), trusted.allows(["https://a.b.example.net"])
        (True, True)
        >>> trusted.allows(["https://example.net"])
        False
    """

    __slots__ = ("exact", "patterns")

    def __init__(self, values: Iterable[str]) -> None:
        if isinstance(values, str | bytes):
            raise ConfigurationError(f"{_SETTING} must be a list of origins, not one string: write [{values!r}].")
        self.exact, self.patterns = _compiled(check_strs("trusted_origins", values))

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns)

    def allows(self, origin_values: Sequence[str | bytes]) -> bool:
        """True when the request has exactly one ``Origin`` and it is trusted."""
        if not (self.exact or self.patterns):
            return False  # no parse when nothing is trusted
        origin = single_origin(origin_values)
        return origin is not None and self.matches(origin)

    def matches(self, origin: Origin) -> bool:
        """True when the parsed ``origin`` is trusted (an exact origin, or under a pattern)."""
        return origin in self.exact or any(p.matches(origin) for p in self.patterns)


def single_origin(values: Sequence[str | bytes]) -> Origin | None:
    """The parsed origin of a request with exactly one valid ``Origin`` value; None otherwise.

    Example::

        >>> single_origin(["https://example.com"]), single_origin(["null"]), single_origin(["a", "b"])
        (Origin(scheme='https', host='example.com', port=443), None, None)
    """
    return parse_origin(values[0]) if len(values) == 1 else None


def _compiled(values: Iterable[str]) -> tuple[frozenset[Origin], tuple[HostPattern, ...]]:
    """``(exact origins, patterns)``, each value checked in order (the first mistake is the one explained)."""
    exact: set[Origin] = set()
    patterns: list[HostPattern] = []
    for text in values:
        if _is_pattern(text):
            patterns.append(_pattern(text))
        else:
            exact.add(_origin(text))
    return frozenset(exact), tuple(patterns)


def _is_pattern(text: object) -> bool:
    return isinstance(text, str) and "*" in text and text != "*"  # "*" alone is refused as an origin


def _check_not_any(text: str) -> None:
    if text in ("null", "*"):
        raise ConfigurationError(
            f"{_SETTING}: {text!r} is not an origin (it would trust every sandboxed or every other site);"
            " list the origins you trust, such as 'https://admin.example.com'."
        )


def _origin(text: str) -> Origin:
    _check_not_any(text)
    try:
        return config_origin(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{_SETTING}: {exc.detail}") from None


def _pattern(text: str) -> HostPattern:
    try:
        # credentials=True: cookies ride on these requests, so a pattern over other registrants' sites is refused
        return config_pattern(text, credentials=True)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{_SETTING}: {exc.detail}") from None
