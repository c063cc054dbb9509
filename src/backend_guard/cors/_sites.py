"""Who holds a host: registrable domains, public suffixes, and hosts other registrants may own.

What lives here: the Public Suffix List (shipped inside ``publicsuffixlist``, read once, no network), the site of
a host (its registrable domain, or the address itself), hosts an attacker may register near a given one (what an
origin pattern or regex is tried against), and :func:`refuse_or_warn`, the one rule for a setting that reaches
other people's sites: refused with credentials, a warning at start-up without. Only construction-time work.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from typing import TYPE_CHECKING

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["foreign_variants", "is_ip", "psl", "refuse_or_warn", "registrable", "site", "suffixes_below"]

_HOST_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_SITES_READ = "those sites would read your users' data"

log = logging.getLogger("backend_guard.cors")


@functools.cache
def psl() -> PublicSuffixList:
    """The Public Suffix List shipped inside the ``publicsuffixlist`` package (read once; no network)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.cache
def suffixes_below() -> dict[str, tuple[str, ...]]:
    """For each domain with public suffixes under it, hosts an attacker may register there (``amazonaws.com``:
    ``attacker.s3.amazonaws.com``, ...). Read once from the list file shipped in ``publicsuffixlist``."""
    from publicsuffixlist import PSLFILE

    below: dict[str, list[str]] = {}
    with open(PSLFILE, encoding="utf-8") as lines:
        for line in lines:
            rule = _rule_of(line)
            if rule is not None:
                _add_rule(below, rule)
    return {domain: tuple(hosts) for domain, hosts in below.items()}


def _rule_of(line: str) -> str | None:
    """The ASCII rule of one line of the list; None for comments, blank lines, exceptions and bad names."""
    rule = line.lower().split(" ")[0].strip()
    if not rule or rule.startswith(("//", "!")):
        return None
    return rule if rule.isascii() else _idna(rule)


def _idna(rule: str) -> str | None:
    try:
        return rule.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _add_rule(below: dict[str, list[str]], rule: str) -> None:
    """Note the host an attacker may register under ``rule`` for every domain above it."""
    host = "attacker." + rule.replace("*", "attacker")
    labels = rule.split(".")
    for k in range(1, len(labels)):
        below.setdefault(".".join(labels[k:]), []).append(host)


def is_ip(host: str) -> bool:
    """True when ``host`` is an IP address (brackets allowed).

    Example::

        >>> is_ip("[::1]"), is_ip("example.com")
        (True, False)
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def registrable(host: str) -> str:
    """The part of ``host`` one registrant holds (``example.co.uk`` of ``app.example.co.uk``).

    A host that is itself a public suffix (``github.io``, ``co.uk``, an unknown one-label name) is its own
    answer, so that variations of its first label count as other registrants.

    Example::

        >>> registrable("app.example.co.uk")
        'example.co.uk'
    """
    found = psl().privatesuffix(host)
    return found if found is not None else host


def site(host: str) -> str:
    """The registrable domain of ``host``; an address is its own site.

    Example::

        >>> site("api.example.com"), site("[::1]")
        ('example.com', '[::1]')
    """
    return host if host.startswith("[") or is_ip(host) else registrable(host)


def refuse_or_warn(credentials: bool, message: str, instead: str, risk: str = _SITES_READ) -> None:
    """Refuse a setting reaching other people's sites (``ConfigurationError``) with credentials; warn without.

    Example::

        refuse_or_warn(True, "CORS allow_origin_regex ... admits 'https://attacker.com'.", "write ... instead.")
    """
    # With credentials another site reads the user's data: refused. Without, it reads what any client could
    # fetch anonymously, as allow_origins=["*"] (accepted without credentials) would: a warning at start-up.
    if credentials:
        raise ConfigurationError(f"{message} With allow_credentials=True {risk}; {instead}")
    log.warning("%s %s", message, instead)


def foreign_variants(host: str) -> list[str]:
    """Hosts of other registrants made from ``host``: its registrable label changed (from its own characters,
    so a loose character class admits them too), another suffix, and the whole host under an attacker's domain.

    Example::

        >>> "app.attacker.com" in foreign_variants("app.example.com")
        True
    """
    if host.startswith("[") or is_ip(host):
        return []
    found = registrable(host)
    sub = host[: len(host) - len(found)]  # "app." of "app.example.com"
    label, _, suffix = found.partition(".")
    out = _relabelled(sub, label, suffix)
    out += [host + ".attacker.zz", host + "zz"]
    out += suffixes_below().get(found, ())
    out += _one_changed(host, len(sub))
    return out


def _relabelled(sub: str, label: str, suffix: str) -> list[str]:
    """``sub`` + another registrable label (``attacker``, glued or doubled forms of ``label``), and ``label``
    under other suffixes."""
    dot_suffix = f".{suffix}" if suffix else ""
    out: list[str] = []
    for other in (
        "attacker",
        "attacker" + label,
        label + "attacker",
        label + label,
        label[0] + label,
        label + label[-1],
    ):
        out += [sub + other + dot_suffix, other + dot_suffix]
    return out + _other_suffixes(sub, label, suffix)


def _other_suffixes(sub: str, label: str, suffix: str) -> list[str]:
    """``sub`` + ``label`` under other suffixes (the suffix with its last letter doubled, ``zz``, ``attacker``)."""
    if not suffix:
        return []
    return [f"{sub}{label}.{other}" for other in (suffix + suffix[-1], "zz", "attacker")]


def _one_changed(host: str, start: int) -> list[str]:
    """``host`` with one character from ``start`` on changed ("example.c[a-z]" admits example.cn, "shop[0-9]"
    shop2.com); dots are kept."""
    return [changed for i in range(start, len(host)) if host[i] != "." for changed in _changed_at(host, i)]


def _changed_at(host: str, i: int) -> list[str]:
    return [host[:i] + ch + host[i + 1 :] for ch in _HOST_CHARS if ch != host[i]]
