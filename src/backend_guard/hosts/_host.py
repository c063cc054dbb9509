"""The grammar of a ``Host`` value: ``host[:port]``, a name, an IPv4 address or a bracketed IPv6 literal.

What lives here: :func:`parse_host` (a request's value, None when it is anything else) and :func:`config_host`
(a configured host, each mistake explained). Both read the host with the strict origin grammar of
``backend_guard.cors`` (``parse_origin``/``config_origin``): lower-case ASCII labels, IDNA in ``xn--`` form,
IPv6 compressed, at most 253 characters, so a host is compared as one normalised value everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

from ..cors._origin import Origin, config_origin, parse_origin
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
    return _parsed(host.removesuffix("."), port_text)


def _parsed(host: str, port_text: str | None) -> HostName | None:
    """``host[:port]`` read with the origin grammar; the port None when none was written."""
    if port_text is None:
        return _host_name(parse_origin(f"http://{host}"), False)
    return _host_name(parse_origin(f"http://{host}:{port_text}"), True)


def _host_name(origin: Origin | None, port_given: bool) -> HostName | None:
    """The host and (when one was written) the port of a parsed origin; None when it did not parse."""
    if origin is None:
        return None
    return HostName(origin.host, origin.port if port_given else None)


def _text(value: str | bytes | None) -> str | None:
    """The value as text, None when it is empty, overlong or not text."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")  # one character per byte: a non-ASCII byte is refused by the grammar
    if isinstance(value, str) and 0 < len(value) <= MAX_HOST_LENGTH:
        return value
    return None


def _split_port(value: str) -> tuple[str, str | None]:
    """``(host, port text)``; the port text None without a colon after the host (IPv6 keeps its colons)."""
    if value.startswith("["):
        return _split_bracketed(value)
    host, colon, port_text = value.partition(":")
    return host, (port_text if colon else None)


def _split_bracketed(value: str) -> tuple[str, str | None]:
    """``(host, port text)`` of ``[v6]`` or ``[v6]:port``; anything else whole (the grammar refuses it)."""
    host, bracket, rest = value.partition("]")
    if not _closed(bracket, rest):
        return value, None
    return host + bracket, rest[1:] if rest else None


def _closed(bracket: str, rest: str) -> bool:
    """Whether ``[v6`` was closed by ``]`` followed by nothing or by a ``:port``."""
    return bool(bracket) and (not rest or rest.startswith(":"))


def config_host(text: object, setting: str) -> str:
    """The normalised form of a configured host (no wildcard, no port), explaining what is wrong.

    Example::

        >>> config_host("Bücher.Example.", "TrustedHosts"), config_host("[0::1]", "TrustedHosts")
        ('xn--bcher-kva.example', '[::1]')
    """
    text = _host_text(text, setting)
    _check_no_port(text, setting)
    try:
        return config_origin(f"http://{text.removesuffix('.')}").host
    except ConfigurationError:
        raise ConfigurationError(f"{setting}: {text!r} is not a valid host; {_WRITE}.") from None


def _host_text(text: object, setting: str) -> str:
    """A configured host is text with something besides white space."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"{setting}: {text!r} is not a host; {_WRITE}.")
    return text


def _port_given(text: str, setting: str) -> bool:
    """Whether a configured host has a port; an IPv6 address without brackets is refused."""
    if text.startswith("["):
        return "]:" in text
    if text.count(":") > 1:
        raise ConfigurationError(f"{setting}: {text!r} looks like an IPv6 address; write it in brackets: '[{text}]'.")
    return ":" in text


def _check_no_port(text: str, setting: str) -> None:
    if _port_given(text, setting):
        raise ConfigurationError(
            f"{setting}: {text!r} has a port; write the host alone ('example.com'): the port of the Host header"
            " is not checked (the listener's sockets decide which ports reach the server)."
        )
