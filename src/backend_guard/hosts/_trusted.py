"""The ``Host`` allowlist: exact names and ``*.example.com`` wildcards, validated once, asked per request.

What lives here: :class:`TrustedHosts`. Why it matters: applications build absolute URLs from ``Host``
(password-reset links, redirects, ``url_for(_external=True)``), and caches key on it; a server that answers any
``Host`` lets a client choose the domain those URLs and cached pages point to.

Rules (the docs' table): a configured host is lower-cased, its trailing dot dropped and IDNA names written in
their ``xn--`` form; ``*.example.com`` admits every subdomain at any depth but not ``example.com`` itself (list
both when both are served), is allowed only at the left and never over a top-level domain or a public suffix;
``"*"`` alone (any host) needs ``allow_any=True``; ports are not written and not checked. A request's value is
allowed when it is exactly one valid ``host[:port]`` whose host is listed or under a wildcard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._check import check_strs
from ..cors._patterns import config_pattern
from ..exceptions import ConfigurationError
from ._host import config_host, parse_host

__all__ = ["TrustedHosts"]

_SETTING = "TrustedHosts"


class TrustedHosts:
    """A ``Host`` header allowlist: ``"example.com"`` exactly, ``"*.example.com"`` for its subdomains.

    :param hosts: the hosts this server answers for (at least one). Ports are not written: the port of the
        ``Host`` value is not checked. ``"*"`` alone means any host and needs ``allow_any=True``.
    :param allow_any: accept ``["*"]`` (every syntactically valid host; for development only).

    Example::

        >>> import backend_guard as bg
        >>> hosts = bg.TrustedHosts(["example.com", "*.example.com"])
        >>> hosts.allows("Example.COM."), hosts.allows("api.example.com:8443"), hosts.allows("example.com.evil.net")
        (True, True, False)
        >>> hosts.allows(["example.com", "evil.net"])  # several Host values
        False
    """

    __slots__ = ("allow_any", "exact", "suffixes")

    def __init__(self, hosts: Iterable[str], *, allow_any: bool = False) -> None:
        values = _host_list(hosts, allow_any)
        self.allow_any = _check_any(values, allow_any)
        self.exact = _exact_hosts(_names(values))
        self.suffixes = _suffixes(_wildcards(values))

    def allows(self, host: str | bytes | Sequence[str | bytes] | None) -> bool:
        """True when ``host`` (the ``Host`` value, or the list of its values) is exactly one allowed host.

        Never raises: an empty, overlong, non-ASCII or malformed value, or several values, is simply refused.
        """
        text = _one_value(host)
        if text is None:
            return False
        if text in self.exact or self._listed_with_port(text):
            return True  # the common cases: the value as configured, with or without a port
        parsed = parse_host(text)
        return parsed is not None and self._name_allowed(parsed.host)

    def _listed_with_port(self, text: str) -> bool:
        """True for ``listed-host:port`` with a valid port (no parse needed: the host is as configured)."""
        name, colon, port = text.rpartition(":")
        return bool(colon) and name in self.exact and _is_port(port)

    def _name_allowed(self, name: str) -> bool:
        """True when a parsed host name is listed, under a wildcard, or anything goes (``["*"]``)."""
        return self.allow_any or name in self.exact or _under_wildcard(name, self.suffixes)


def _under_wildcard(name: str, suffixes: tuple[str, ...]) -> bool:
    """True when a host name (not an IPv6 literal) ends with one of the wildcards' ``.example.com``."""
    return name.endswith(suffixes) and not name.startswith("[")


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) < 65536


def _one_value(host: str | bytes | Sequence[str | bytes] | None) -> str | None:
    """The text of the single ``Host`` value; None for several values or a value that is not text."""
    if isinstance(host, list | tuple):
        host = _single(host)
    if isinstance(host, bytes):
        return host.decode("latin-1")
    return host if isinstance(host, str) else None


def _single(values: Sequence[str | bytes]) -> str | bytes | None:
    """The only value of a list of ``Host`` values; None for none or several."""
    return values[0] if len(values) == 1 else None


def _host_list(hosts: Iterable[str], allow_any: object) -> list[str]:
    """The configured hosts as a list, refusing one string, an empty list and a switch that is no bool."""
    _check_not_one_string(hosts)
    _check_allow_any_type(allow_any)
    values = list(check_strs(f"{_SETTING} hosts", hosts))
    if not values:
        raise ConfigurationError(f"{_SETTING} needs at least one host: write ['example.com'].")
    return values


def _check_not_one_string(hosts: object) -> None:
    if isinstance(hosts, str | bytes):
        raise ConfigurationError(f"{_SETTING} takes a list of hosts, not one string: write [{hosts!r}].")


def _check_allow_any_type(allow_any: object) -> None:
    if not isinstance(allow_any, bool):
        raise ConfigurationError(f"{_SETTING} allow_any must be True or False, got {allow_any!r}.")


def _names(values: list[str]) -> list[str]:
    """The configured values that are host names (no wildcard)."""
    return [v for v in values if not _is_wildcard(v)]


def _wildcards(values: list[str]) -> list[str]:
    """The configured ``*.example.com`` values (not the ``"*"`` opt-in)."""
    return [v for v in values if _is_wildcard(v) and v != "*"]


def _suffixes(wildcards: list[str]) -> tuple[str, ...]:
    """The wildcards' ``.example.com`` suffixes, each once, sorted."""
    return tuple(sorted({_suffix(v) for v in wildcards}))


def _exact_hosts(names: list[str]) -> frozenset[str]:
    """The normalised hosts, each also with a trailing dot (``example.com.`` is then matched without parsing)."""
    exact = {config_host(name, _SETTING) for name in names}
    return frozenset(exact | {f"{host}." for host in exact})


def _is_wildcard(value: object) -> bool:
    return isinstance(value, str) and "*" in value


def _check_any(values: list[str], allow_any: bool) -> bool:
    """Whether the list is the ``"*"`` opt-in; ``"*"`` without ``allow_any`` or next to hosts is refused."""
    if "*" not in values:
        _check_no_allow_any(allow_any)
        return False
    _check_star(values, allow_any)
    return True


def _check_no_allow_any(allow_any: bool) -> None:
    if allow_any:
        raise ConfigurationError(f"{_SETTING}: allow_any=True goes with ['*'] only; list the hosts or use ['*'].")


def _check_star(values: list[str], allow_any: bool) -> None:
    """``"*"`` needs ``allow_any`` and comes alone."""
    if not allow_any:
        raise ConfigurationError(
            f"{_SETTING}: '*' accepts any Host header, which lets clients choose the domain of the URLs the"
            " application builds; list your hosts (['example.com', '*.example.com']), or pass allow_any=True"
            " for development."
        )
    if len(values) > 1:
        raise ConfigurationError(f"{_SETTING}: '*' already accepts every host; write ['*'] alone.")


def _suffix(text: str) -> str:
    """``.example.com`` of ``*.example.com``, its reach checked as CORS checks origin patterns."""
    _check_leading_wildcard(text)
    base = config_host(text[2:], _SETTING)
    try:
        # The CORS pattern checks (credentials=True: refused, not warned): not over a top-level domain, a
        # public suffix (*.github.io) or a domain whose subdomains other people register.
        config_pattern(f"https://*.{base}", credentials=True)
    except ConfigurationError:
        raise ConfigurationError(
            f"{_SETTING}: {text!r} admits hosts other people register (a top-level domain or public suffix);"
            f" write a domain you own, such as '*.yourname.{base}', or list each host."
        ) from None
    return f".{base}"


def _check_leading_wildcard(text: str) -> None:
    if not text.startswith("*.") or "*" in text[2:]:
        raise ConfigurationError(
            f"{_SETTING}: {text!r}: the only wildcard is a leading '*.' label, such as '*.example.com'."
        )
