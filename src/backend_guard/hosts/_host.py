"""The grammar of a ``Host`` value: ``host[:port]``, a name, an IPv4 address or a bracketed IPv6 literal.

What lives here: :func:`parse_host` (a request's value, None when it is anything else) and :func:`config_host`
(a configured host, each mistake explained). Both read the host with the strict origin grammar of
``backend_guard.cors`` (``parse_origin``/``config_origin``): lower-case ASCII labels, IDNA in ``xn--`` form,
IPv6 compressed, at most 253 characters, so a host is compared as one normalised value everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

from ..cors._origin import config_origin, parse_origin
from ..exceptions import ConfigurationError

__all__ = ["MAX_HOST_LENGTH", "HostName", "config_host", "parse_host"]

#: Longest ``Host`` value read (253 for the name, a port, brackets): anything longer is refused unread.
MAX_HOST_LENGTH = 300

_WRITE = "write a host name ('example.com'), a subdomain wildcard ('*.example.com') or an address ('[::1]')"


class HostName(NamedTuple):
    """A parsed ``Host`` value: the normalised host (no trailing dot) and the port, None when not given.

    Example::

        >>> parse_host("API.Example.COM.:8443")
        HostName(host='api.example.com', port=8443)
    """

    host: str
    port: int | None


def parse_host(value: str | bytes | None) -> HostName | None:
    """Parse one ``Host`` value; None when it is empty, overlong, not ASCII, or not ``host[:port]``.

    One trailing dot is dropped (``example.com.`` is the same name); an empty port (``example.com:``), a bare
    IPv6 address, userinfo, a path or whitespace make the value invalid.

    Example::

        >>> parse_host("[::1]:8000"), parse_host("example.com/evil"), parse_host("")
        (HostName(host='[::1]', port=8000), None, None)
    """
    text = _text(value)
    if text is None:
        return None
    host, port_text = _split_port(text)
    if port_text == "" or host.endswith(".."):
        return None  # an empty port, or two trailing dots: not a host
    host = host.removesuffix(".")
    origin = parse_origin(f"http://{host}" if port_text is None else f"http://{host}:{port_text}")
    if origin is None:
        return None
    return HostName(origin.host, None if port_text is None else origin.port)


def _text(value: str | bytes | None) -> str | None:
    """The value as text, None when it is empty, overlong or not text."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")  # one character per byte: a non-ASCII byte is refused by the grammar
    if not isinstance(value, str) or not value or len(value) > MAX_HOST_LENGTH:
        return None
    return value


def _split_port(value: str) -> tuple[str, str | None]:
    """``(host, port text)``; the port text None without a colon after the host (IPv6 keeps its colons)."""
    if value.startswith("["):
        return _split_bracketed(value)
    host, colon, port_text = value.partition(":")
    return (host, port_text) if colon else (host, None)


def _split_bracketed(value: str) -> tuple[str, str | None]:
    """``(host, port text)`` of ``[v6]`` or ``[v6]:port``; anything else whole (the grammar refuses it)."""
    host, bracket, rest = value.partition("]")
    if not bracket or (rest and not rest.startswith(":")):
        return value, None
    return host + bracket, rest[1:] if rest else None


def config_host(text: object, setting: str) -> str:
    """The normalised form of a configured host (no wildcard, no port), explaining what is wrong.

    Example::

        >>> config_host("Bücher.Example.", "TrustedHosts"), config_host("[0::1]", "TrustedHosts")
        ('xn--bcher-kva.example', '[::1]')
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"{setting}: {text!r} is not a host; {_WRITE}.")
    _check_no_port(text, setting)
    try:
        return config_origin(f"http://{text.removesuffix('.')}").host
    except ConfigurationError:
        raise ConfigurationError(f"{setting}: {text!r} is not a valid host; {_WRITE}.") from None


def _check_no_port(text: str, setting: str) -> None:
    if text.startswith("["):
        port_given = "]:" in text
    elif text.count(":") > 1:
        raise ConfigurationError(f"{setting}: {text!r} looks like an IPv6 address; write it in brackets: '[{text}]'.")
    else:
        port_given = ":" in text
    if port_given:
        raise ConfigurationError(
            f"{setting}: {text!r} has a port; write the host alone ('example.com'): the port of the Host header"
            " is not checked (the listener's sockets decide which ports reach the server)."
        )
