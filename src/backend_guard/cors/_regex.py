"""Origin regexes: compiled only without an unescaped ``.``, and checked for the sites they admit.

What lives here: :func:`check_regex` (a ``.`` outside a character class matches any character, so
``https://app.example.com`` would admit ``https://appxexample.com``: refused) and :func:`check_regex_reach`,
which writes out origins the regex matches (``_regex_samples``), derives hosts other registrants may hold from
them (``_sites``) and refuses (with credentials) or warns about a regex admitting one. Construction time only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..exceptions import ConfigurationError
from ._origin import MAX_ORIGIN_LENGTH, Origin, parse_origin
from ._regex_samples import regex_samples
from ._sites import foreign_variants, refuse_or_warn, site

__all__ = ["check_regex", "check_regex_reach", "regex_escape"]

# Sites an attacker may own, tried against an origin regex besides the ones derived from what it matches.
_FOREIGN_HOSTS = ("attacker.com", "evil.example", "attacker.com.evil.net", "attacker", "203.0.113.7")
_REGEX_INSTEAD = (
    "name your own registrable domain with escaped dots after the wildcard part"
    " ('https://[a-z0-9-]+\\.example\\.com'), or use allow_origin_patterns=['https://*.example.com']."
)
# What a regex none of whose samples is an origin is tried from.
_DEFAULT_BASES = (Origin("https", "example.com", 443), Origin("http", "example.com", 80))
# The regex's text in tokens: an escape (with the character it escapes), a whole character class (a ']' first in
# it is literal, escapes inside it skipped), a '.' that is not repeated (group "dot": a repeated '.' is a wildcard
# on purpose), or any other single character.
_TOKENS = re.compile(r"\\.?|\[\]?(?:\\.?|[^\]\\])*\]?|(?P<dot>\.(?![*+{]))|.", re.DOTALL)


def check_regex(text: str) -> re.Pattern[str]:
    """Compile a raw origin regex, refusing unescaped dots outside character classes.

    Example::

        >>> check_regex(r"https://[a-z]+\\.example\\.com").pattern
        'https://[a-z]+\\\\.example\\\\.com'
    """
    if _has_wild_dot(text):
        raise ConfigurationError(
            f"CORS origin regex {text!r} has an unescaped '.', which matches any character"
            " ('https://app.example.com' would admit 'https://appxexample.com'); write '\\.' or a class"
            " such as '[a-z0-9-]+'."
        )
    return _compile(text)


def _has_wild_dot(text: str) -> bool:
    """True when ``text`` has a ``.`` outside a character class, not escaped and not repeated."""
    return any(token.group("dot") for token in _TOKENS.finditer(text))


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigurationError(f"CORS origin regex {text!r} does not compile: {exc}.") from None
    except RecursionError:
        raise ConfigurationError(f"CORS origin regex {text!r} is nested too deeply to compile.") from None


def _matched_samples(regex: re.Pattern[str]) -> list[Origin]:
    """Origins the regex really matches, among the strings written out from it (none when it cannot be)."""
    parsed = map(parse_origin, _sample_texts(regex))
    return list(dict.fromkeys(o for o in parsed if o is not None and regex.fullmatch(o.serialize())))


def _sample_texts(regex: re.Pattern[str]) -> list[str]:
    try:
        return regex_samples(regex.pattern, MAX_ORIGIN_LENGTH)
    except (ValueError, RecursionError):  # too many alternatives or too deep to write out: not checkable
        return []


def _one_per_site(origins: Iterable[Origin]) -> list[Origin]:
    """The first of ``origins`` for each (scheme, site, port): other registrants of a site are tried once."""
    firsts: dict[tuple[str, str, int | None], Origin] = {}
    for origin in origins:
        firsts.setdefault((origin.scheme, site(origin.host), origin.port), origin)
    return list(firsts.values())


def _foreign_match(regex: re.Pattern[str], origin: Origin, named: set[str]) -> str | None:
    """An origin of another registrant, made from ``origin``, that the regex admits; None when there is none."""
    for host in (*_FOREIGN_HOSTS, *foreign_variants(origin.host)):
        probe = parse_origin(Origin(origin.scheme, host, origin.port).serialize())
        if probe is not None and site(probe.host) not in named and regex.fullmatch(probe.serialize()):
            return probe.serialize()
    return None


def regex_escape(regex: re.Pattern[str]) -> tuple[str | None, str | None]:
    """``(origin outside the domains the regex names that it admits, an origin it matched)``; the first is
    None when none was found, the second None when no origin it matches could be made to check it with.

    Example::

        >>> regex_escape(re.compile(r"https://[a-z]+\\.example\\.com"))
        (None, 'https://a.example.com')
    """
    samples = _matched_samples(regex)
    found = _first_escape(regex, samples)
    if found is None:
        return None, (samples[0].serialize() if samples else None)
    escape, origin = found
    return escape, (origin.serialize() if samples else None)


def _first_escape(regex: re.Pattern[str], samples: list[Origin]) -> tuple[str, Origin] | None:
    """(an origin of another registrant the regex admits, the origin it was made from), or None; tried from the
    samples (or, without any, from example.com)."""
    named = {site(o.host) for o in samples}  # the registrable domains the regex names
    for origin in _one_per_site(samples or _DEFAULT_BASES):
        escape = _foreign_match(regex, origin, named)
        if escape is not None:
            return escape, origin
    return None


def check_regex_reach(text: str, regex: re.Pattern[str], credentials: bool) -> None:
    """Refuse (with credentials) or warn about a regex admitting other registrants' sites, or not checkable.

    Example::

        check_regex_reach(text, check_regex(text), credentials=True)   # ConfigurationError when it escapes
    """
    escape, sample = regex_escape(regex)
    if escape is not None:
        matched = f" (besides {sample!r})" if sample else ""
        refuse_or_warn(
            credentials,
            f"CORS allow_origin_regex {text!r} admits {escape!r}{matched}, a site outside the domains it names.",
            _REGEX_INSTEAD,
        )
    elif sample is None:
        refuse_or_warn(
            credentials,
            f"CORS allow_origin_regex {text!r} could not be checked: no origin it matches could be made from it"
            " (back references, lookarounds, or no valid 'scheme://host[:port]' at all).",
            "write it without back references or lookarounds, or list origins in allow_origins.",
            "a regex must be checkable",
        )
