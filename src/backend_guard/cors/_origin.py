"""Origins: the strict grammar a request's ``Origin`` must follow, and the reading of a configured origin.

What lives here: :class:`Origin` (``(scheme, host, port)``, the default port filled in), :func:`parse_origin`
for request values (anything that is not exactly ``scheme://host[:port]`` is None: no path, no userinfo, no
whitespace, ASCII only) and :func:`config_origin` for configured values (IDNA hosts allowed, each mistake
explained). Matching an origin against a policy happens in ``_policy``, by comparing these parsed values.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = ["DEFAULT_PORTS", "MAX_ORIGIN_LENGTH", "Origin", "config_origin", "parse_origin", "with_port"]

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
MAX_ORIGIN_LENGTH = 512  # longer than any real origin (a host is at most 253 characters)

_SCHEME = r"[a-z][a-z0-9+.\-]*"
_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_ORIGIN_RE = re.compile(rf"({_SCHEME})://({_HOST}|\[[0-9a-f:.]+\])(?::([0-9]{{1,5}}))?", re.ASCII)
_IDNA_DEVIATIONS = frozenset("\u00df\u1e9e\u03c2\u200c\u200d")  # UTS 46 deviations (and capitals)


class Origin(NamedTuple):
    """A parsed origin: lower-case scheme, lower-case ASCII host (IDNA), and the port (default filled in).

    Example::

        >>> parse_origin("HTTPS://Example.COM:443")
        Origin(scheme='https', host='example.com', port=443)
        >>> parse_origin("https://example.com:443").serialize()
        'https://example.com'
    """

    scheme: str
    host: str
    port: int | None

    def serialize(self) -> str:
        """The origin as a browser writes it in the ``Origin`` header (default port left out)."""
        if self.port in (None, DEFAULT_PORTS.get(self.scheme)):
            return f"{self.scheme}://{self.host}"
        return f"{self.scheme}://{self.host}:{self.port}"


def _finish(scheme: str, host: str, port_text: str | None) -> Origin | None:
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    elif len(host) > 253:
        return None
    port: int | None = DEFAULT_PORTS.get(scheme)
    if port_text is not None:
        port = int(port_text)
        if not 0 < port < 65536:
            return None
    return Origin(scheme, host, port)


def parse_origin(value: str | bytes) -> Origin | None:
    """Parse a request's ``Origin`` value; None when it is not exactly ``scheme://host[:port]`` (or is ``null``).

    Strict on purpose: no path, no userinfo, no whitespace, ASCII only (browsers send IDNA hosts as
    ``xn--``), at most 512 characters. Case and default ports are normalised.

    Example::

        >>> parse_origin("https://example.com@evil.net") is None
        True
        >>> parse_origin("http://localhost:8000")
        Origin(scheme='http', host='localhost', port=8000)
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")  # a byte that is not ASCII becomes U+FFFD: refused just below
    if len(value) > MAX_ORIGIN_LENGTH or not value.isascii():
        return None
    m = _ORIGIN_RE.fullmatch(value.lower())
    if m is None:
        return None
    return _finish(m.group(1), m.group(2), m.group(3))


def with_port(base: str, port_text: str | None) -> str:
    """``base`` followed by ``:port_text`` when there is a port.

    Example::

        >>> with_port("https://example.com", "8443"), with_port("https://example.com", None)
        ('https://example.com:8443', 'https://example.com')
    """
    return base if port_text is None else f"{base}:{port_text}"


def config_origin(text: str) -> Origin:
    """Parse a configured origin, explaining what is wrong (IDNA hosts allowed here).

    Example::

        >>> config_origin("https://bücher.example")
        Origin(scheme='https', host='xn--bcher-kva.example', port=443)
    """
    _check_origin_text(text)
    scheme, _, rest = text.partition("://")
    host, port_text = _split_port(rest)
    origin = parse_origin(with_port(f"{scheme.lower()}://{_ascii_host(text, host)}", port_text))
    if origin is None:
        raise ConfigurationError(f"CORS origin {text!r} is not a valid 'scheme://host[:port]' origin.")
    return origin


def _check_origin_text(text: str) -> None:
    if not isinstance(text, str) or not text:
        raise ConfigurationError(f"CORS origin must be a non-empty string, got {text!r}.")
    if "://" not in text:
        raise ConfigurationError(f"CORS origin {text!r} has no scheme; write it as 'https://host[:port]'.")
    _check_origin_parts(text)


def _check_origin_parts(text: str) -> None:
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed or misplaced IPv6 bracket ('https://[::1')
        raise ConfigurationError(f"CORS origin {text!r} is not a valid 'scheme://host[:port]' origin.") from None
    if "@" in parts.netloc:
        raise ConfigurationError(f"CORS origin {text!r} has userinfo ('user@'); an origin never has one.")
    if _has_more_than_origin(text, parts.path, parts.query, parts.fragment):
        raise ConfigurationError(
            f"CORS origin {text!r} has a path, query or fragment; an origin is only 'scheme://host[:port]'"
            " (no trailing slash)."
        )


def _has_more_than_origin(text: str, path: str, query: str, fragment: str) -> bool:
    """True when a configured origin has a path (a trailing slash too), a query or a fragment."""
    return bool(path or query or fragment or text.endswith(("?", "#")))


def _split_port(rest: str) -> tuple[str, str | None]:
    """``(host, port text)`` of what follows ``scheme://`` (a bracketed IPv6 host keeps its colons)."""
    if ("]:" in rest) if rest.startswith("[") else (":" in rest):
        host, _, port_text = rest.rpartition(":")
        return host, port_text
    return rest, None


def _ascii_host(text: str, host: str) -> str:
    """The lower-case ASCII (IDNA) form of a configured host."""
    if host.isascii():
        return host.lower()
    _check_idna_deviations(text, host)
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ConfigurationError(f"CORS origin {text!r} has a host that is not a valid IDNA name.") from None


def _check_idna_deviations(text: str, host: str) -> None:
    if any(ch in _IDNA_DEVIATIONS for ch in host):
        # Python's codec (IDNA 2003) maps these ("faß" -> "fass"), browsers (UTS 46 non-transitional) keep them
        # ("xn--fa-hia"): the policy would allow another registrant's domain and not the one meant.
        raise ConfigurationError(
            f"CORS origin {text!r} has a character IDNA 2003 and browsers encode differently (ß, ς, ZWJ, ZWNJ);"
            " write the host in its 'xn--' form."
        )
