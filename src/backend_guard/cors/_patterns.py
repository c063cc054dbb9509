"""Origin patterns (``https://*.example.com``): parsed, refused when they would admit a whole top-level domain,
and refused or warned about when sites under them belong to other registrants (public suffixes).

What lives here: :class:`HostPattern` (any subdomain at any depth of one domain, never the bare domain; ``:*``
for any port) and :func:`config_pattern`, which builds one from a setting and checks its reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ConfigurationError
from ._origin import Origin, config_origin, with_port
from ._sites import is_ip, psl, refuse_or_warn, suffixes_below

__all__ = ["HostPattern", "config_pattern"]

# Hosts no attacker can choose under a pattern or regex: the loopback name (browsers resolve "*.localhost" to
# loopback), so "http://*.localhost:*" stays a fine development setting although "localhost" is no domain.
_LOOPBACK_NAMES = frozenset({"localhost"})
_INSTEAD = "list your own origins in allow_origins, or narrow the pattern to a name you own"


@dataclass(frozen=True, slots=True)
class HostPattern:
    """A compiled origin pattern: the scheme, the host suffix (``.example.com``) and the port.

    Example::

        >>> config_pattern("https://*.example.com").matches(Origin("https", "api.example.com", 443))
        True
    """

    scheme: str
    suffix: str  # ".example.com": any subdomain, at any depth
    port: int | None  # None with any_port
    any_port: bool

    def matches(self, origin: Origin) -> bool:
        """True when ``origin`` is a subdomain of the pattern's domain, with its scheme and port."""
        return (
            origin.scheme == self.scheme
            and origin.host.endswith(self.suffix)
            and (self.any_port or origin.port == self.port)
            and not origin.host.startswith("[")
        )


def config_pattern(text: str, credentials: bool = False) -> HostPattern:
    """Build the :class:`HostPattern` of a configured ``"scheme://*.domain[:port|:*]"``, checking its reach.

    Example::

        >>> config_pattern("http://*.localhost:*")
        HostPattern(scheme='http', suffix='.localhost', port=None, any_port=True)
    """
    scheme, base_host, port_text = _pattern_parts(text)
    any_port = port_text == "*"
    base = config_origin(with_port(f"{scheme}://{base_host}", None if any_port else port_text))
    _check_below_a_domain(text, base.host)
    _check_public_pattern(text, base.host, credentials)
    return HostPattern(base.scheme, "." + base.host, None if any_port else base.port, any_port)


def _check_below_a_domain(text: str, host: str) -> None:
    """Refuse a pattern over a top-level domain (``*.com``) or an address (``localhost`` is fine)."""
    if host.startswith("[") or ("." not in host and host != "localhost"):
        raise ConfigurationError(
            f"CORS origin pattern {text!r} would admit a whole top-level domain; name a registrable domain."
        )


def _pattern_parts(text: str) -> tuple[str, str, str | None]:
    """``(scheme, base host, port text)`` of a pattern; ``"*"`` as the port text for any port."""
    _check_pattern_scheme(text)
    scheme, _, rest = text.partition("://")
    if not rest.startswith("*."):
        raise ConfigurationError(
            f"CORS origin pattern {text!r}: the only wildcard is a leading '*.' label ('https://*.example.com')."
        )
    return (scheme, *_split_pattern_port(rest[2:]))


def _check_pattern_scheme(text: object) -> None:
    if not isinstance(text, str) or "://" not in text:
        raise ConfigurationError(f"CORS origin pattern {text!r} has no scheme; write 'https://*.example.com'.")


def _split_pattern_port(base_host: str) -> tuple[str, str | None]:
    """``(host, port text)`` after the ``*.`` of a pattern (the port text ``"*"`` for any port)."""
    if ":" not in base_host:
        return base_host, None
    host, _, port_text = base_host.rpartition(":")
    return host, port_text


def _check_public_pattern(text: str, base_host: str, credentials: bool) -> None:
    reach = _pattern_reach(text, base_host)
    if reach is not None:
        refuse_or_warn(credentials, *reach)


def _pattern_reach(text: str, base_host: str) -> tuple[str, str] | None:
    """``(message, what to do instead)`` when ``*.base_host`` admits sites other registrants hold; else None."""
    if base_host in _LOOPBACK_NAMES or is_ip(base_host):
        return None
    scheme = text.partition("://")[0]
    if psl().is_public(base_host):
        return (
            f"CORS allow_origin_patterns {text!r}: {base_host!r} is a public suffix, so '*.{base_host}' admits"
            f" every site anyone registers under it (such as '{scheme}://attacker.{base_host}').",
            f"{_INSTEAD} ('{scheme}://*.yourname.{base_host}').",
        )
    below = suffixes_below().get(base_host)
    if below:
        # The domain is someone's, but sites under it belong to its customers (attacker.s3.amazonaws.com).
        return (
            f"CORS allow_origin_patterns {text!r}: public suffixes lie under {base_host!r}, so"
            f" '*.{base_host}' admits sites anyone registers there (such as '{scheme}://{below[0]}').",
            f"{_INSTEAD}.",
        )
    return None
